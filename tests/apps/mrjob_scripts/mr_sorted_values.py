"""SORT_VALUES: each word's line numbers reach the reducer in order (Hadoop's secondary sort)."""
from mrjob.job import MRJob
from mrjob.protocol import JSONProtocol


class MRSortedValues(MRJob):
    SORT_VALUES = True
    INTERNAL_PROTOCOL = JSONProtocol
    JOBCONF = {"mapreduce.job.reduces": 3}

    def mapper(self, offset, line):
        for word in line.split()[:3]:
            yield word.lower(), line[:12]

    def reducer(self, word, firsts):
        # order-sensitive on purpose: equal output proves the values arrived sorted
        yield word, "|".join(firsts)


if __name__ == "__main__":
    MRSortedValues.run()
