# Twisted's EchoServer from the tutorial (Python 2), ported to Python 3 as a
# test fixture for the interop tests. Changes from the original, and only
# these: the port comes from argv (0, the default, picks a free one), the
# server binds 127.0.0.1 only, and it prints the bound address so that the
# test can read it. The protocol class is the original's.
import sys

from twisted.internet import protocol
from twisted.internet import reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


def main():
    factory = protocol.ServerFactory()
    factory.protocol = Echo

    port = reactor.listenTCP(int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                             factory, interface="127.0.0.1")
    host = port.getHost()
    print("listening on %s:%d" % (host.host, host.port), flush=True)
    reactor.run()


if __name__ == '__main__':
    main()
