package epoll

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// sockaddrToTCP converts a socket address from the kernel to package net's
// form. Anything but IPv4 and IPv6 (which TCP sockets never return) gives
// an empty address rather than nil, so Addr methods never return nil.
func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		ta := &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		if a.ZoneId != 0 {
			ta.Zone = zoneName(int(a.ZoneId))
		}
		return ta
	}
	return &net.TCPAddr{}
}

func zoneName(index int) string {
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return strconv.Itoa(index)
}

// tcpToSockaddr converts ta for bind; a nil IP means every IPv4 address.
func tcpToSockaddr(ta *net.TCPAddr) (int, unix.Sockaddr, error) {
	if ta.Port < 0 || ta.Port > 65535 {
		return 0, nil, fmt.Errorf("port %d out of range", ta.Port)
	}
	if ta.IP == nil {
		return unix.AF_INET, &unix.SockaddrInet4{Port: ta.Port}, nil
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	if ip6 := ta.IP.To16(); ip6 != nil {
		sa := &unix.SockaddrInet6{Port: ta.Port}
		copy(sa.Addr[:], ip6)
		if ta.Zone != "" {
			if ifi, err := net.InterfaceByName(ta.Zone); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.Atoi(ta.Zone); err == nil {
				sa.ZoneId = uint32(n)
			} else {
				return 0, nil, fmt.Errorf("unknown IPv6 zone %q", ta.Zone)
			}
		}
		return unix.AF_INET6, sa, nil
	}
	return 0, nil, fmt.Errorf("invalid IP address %v", ta.IP)
}

// addrPortToSockaddr converts a dial target.
func addrPortToSockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, err := strconv.Atoi(z); err == nil {
			sa.ZoneId = uint32(n)
		}
	}
	return unix.AF_INET6, sa
}
