# This is the Twisted Fast Poetry Server, version 1.0, from the tutorial
# (Python 2), ported to Python 3 as a test fixture for the interop tests.
# Changes from the original, and only these: print statements became print()
# calls, the poem is read as bytes, the interface defaults to 127.0.0.1, and
# a missing --port means 0 (a free port, as the original's help text says)
# instead of 9000. The test reads the port from the "Serving ... on ..." line.

import optparse, os

from twisted.internet.protocol import ServerFactory, Protocol


def parse_args():
    usage = """usage: %prog [options] poetry-file

This is the Fast Poetry Server, Twisted edition.
Run it like this:

  python fastpoetry.py <path-to-poetry-file>

If you are in the base directory of the twisted-intro package,
you could run it like this:

  python twisted-server-1/fastpoetry.py poetry/ecstasy.txt

to serve up John Donne's Ecstasy, which I know you want to do.
"""

    parser = optparse.OptionParser(usage)

    help = "The port to listen on. Default to a random available port."
    parser.add_option('--port', type='int', help=help, default=0)

    help = "The interface to listen on. Default is localhost."
    parser.add_option('--iface', help=help, default='127.0.0.1')

    options, args = parser.parse_args()
    print("--arg:", options, args)

    if len(args) != 1:
        parser.error('Provide exactly one poetry file.')

    poetry_file = args[0]

    if not os.path.exists(args[0]):
        parser.error('No such file: %s' % poetry_file)

    return options, poetry_file


class PoetryProtocol(Protocol):

    def connectionMade(self):
        self.transport.write(self.factory.poem)
        self.transport.loseConnection()


class PoetryFactory(ServerFactory):

    protocol = PoetryProtocol

    def __init__(self, poem):
        self.poem = poem


def main():
    options, poetry_file = parse_args()

    with open(poetry_file, 'rb') as f:
        poem = f.read()

    factory = PoetryFactory(poem)

    from twisted.internet import reactor

    port = reactor.listenTCP(options.port, factory,
                             interface=options.iface)

    print('Serving %s on %s.' % (poetry_file, port.getHost()), flush=True)

    reactor.run()


if __name__ == '__main__':
    main()
