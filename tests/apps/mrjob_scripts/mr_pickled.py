"""An internal pickle protocol: fine on the local runner, refused on a cluster."""
from mrjob.job import MRJob
from mrjob.protocol import PickleProtocol


class MRPickled(MRJob):
    INTERNAL_PROTOCOL = PickleProtocol

    def mapper(self, _, line):
        yield len(line), 1

    def reducer(self, length, ones):
        yield length, sum(ones)


if __name__ == "__main__":
    MRPickled.run()
