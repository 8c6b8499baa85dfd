//go:build !unix

package link

import "net"

func probeClosed(conn net.Conn, isTLS bool) error { return probeByDeadline(conn) }
