"""grep as an mrjob script in Python: a required passthrough option names the pattern."""
import re

from mrjob.job import MRJob


class MRGrepPassthru(MRJob):

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("-e", "--expression", required=True, help="regular expression to search for")
        self.add_passthru_arg("--ignore-case", action="store_true", help="match case-insensitively")

    def mapper_init(self):
        self.pattern = re.compile(self.options.expression, re.I if self.options.ignore_case else 0)

    def mapper(self, _, line):
        if self.pattern.search(line):
            yield None, line


if __name__ == "__main__":
    MRGrepPassthru.run()
