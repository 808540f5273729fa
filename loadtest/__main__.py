"""`python -m loadtest`: the suite's own options. (`locust --help` cannot list them: Locust
answers --help before it loads a locustfile.)"""

import argparse

from loadtest._options import add_arguments

parser = argparse.ArgumentParser(
    prog="locust -f loadtest/",
    usage="%(prog)s [locust options] [these]",
    description="DDIA home-timeline load: the options loadtest/ adds to Locust's",
)
add_arguments(parser)
parser.print_help()
