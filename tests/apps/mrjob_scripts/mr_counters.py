"""Counters and status, mrjob style: lines counted by length, words by first letter."""
from mrjob.job import MRJob


class MRLineCounters(MRJob):

    def mapper(self, _, line):
        self.increment_counter("lines", "long" if len(line) > 40 else "short")
        if not line.strip():
            self.increment_counter("lines", "blank")
        for word in line.split():
            yield word[0].lower(), 1

    def reducer(self, letter, ones):
        self.set_status(f"reducing {letter}")
        yield letter, sum(ones)


if __name__ == "__main__":
    MRLineCounters.run()
