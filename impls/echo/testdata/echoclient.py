# Twisted's EchoClient from the tutorial (Python 2), ported to Python 3 as a
# test fixture for the interop tests. Changes from the original, and only
# these: print statements became print() calls, the message is bytes (and
# decoded for printing), and the server's port comes from argv instead of the
# fixed 1234. Like the original, it prints the first chunk that comes back and
# hangs up, so it suits short messages only.
import sys

from twisted.internet import reactor, protocol


# a client protocol

class EchoClient(protocol.Protocol):
    """Once connected, send a message, then print the result."""

    def connectionMade(self):
        self.transport.write(b"hello alex!")

    def dataReceived(self, data):
        "As soon as any data is received, write it back."
        print("Server said:", data.decode())
        self.transport.loseConnection()

    def connectionLost(self, reason):
        print("connection lost")


class EchoFactory(protocol.ClientFactory):
    protocol = EchoClient

    def clientConnectionFailed(self, connector, reason):
        print("Connection failed - goodbye!")
        reactor.stop()

    def clientConnectionLost(self, connector, reason):
        print("Connection lost - goodbye!")
        reactor.stop()


def main():
    f = EchoFactory()
    reactor.connectTCP("127.0.0.1", int(sys.argv[1]), f)
    reactor.run()


# this only runs if the module was *not* imported
if __name__ == '__main__':
    main()
