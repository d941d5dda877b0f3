package conformance

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/target"
)

// section2_1: [MS-ASP] 2.1 Transport — plain TCP, persistent connections.
func section2_1(e *env) {
	Describe("2.1 Transport", func() {
		e.Rule("2.1-keepalive", func() {
			e.It("answers a PUT, a GET and a HEAD sent one after another on one TCP connection", func(ctx SpecContext) {
				c, k, body := e.dial(ctx), e.key(), content("keepalive")
				status(put(ctx, c, k, body, 20, 0, 0), 200, "request 1 (PUT)")
				r := get(ctx, c, k)
				status(r, 200, "request 2 (GET) on the same connection")
				Expect(r.Body).To(Equal(body), "request 2 (GET): body")
				status(head(ctx, c, k), 200, "request 3 (HEAD) on the same connection")
			})
		})

		e.Rule("2.1-idle-close", func() {
			e.It("after an idle period the connection is still usable or was closed cleanly, and a new connection is served", func(ctx SpecContext) {
				k, body := e.key(), content("idle")
				rc := e.dialRaw(ctx)
				Expect(rc.send(request("PUT", k, body, "Timeout:20", "ExtraFlags:0", "LockCookie:0"))).To(Succeed())
				replies, err := rc.readReplies(ctx, 1)
				Expect(err).NotTo(HaveOccurred(), "reading the PUT reply")
				status(replies[0], 200, "PUT before the idle period")

				data, closed, err := rc.readUntilClose(idleWindow(e.minute))
				Expect(err).NotTo(HaveOccurred(), "while the connection was idle")
				Expect(data).To(BeEmpty(), "the server sent bytes on an idle connection nobody asked for")
				if !closed {
					// Still open: it must still work (the server may close it
					// right now; then the new connection below must work).
					Expect(rc.send(request("GET", k, nil))).To(Succeed())
					if again, err := rc.readReplies(ctx, 1); err == nil {
						status(again[0], 200, "GET on the connection that stayed open")
						Expect(again[0].Body).To(Equal(body))
					}
				}
				expectContent(ctx, e.dial(ctx), k, body, "GET on a new connection after the idle period")
			})
		})

		e.Rule("2.1-close-after-fin", func() {
			e.It("holds no connection in CLOSE-WAIT after 50 clients closed theirs, idle or after a request", func(ctx SpecContext) {
				host, port, err := net.SplitHostPort(e.tgt.Addr())
				Expect(err).NotTo(HaveOccurred())
				if e.tgt.Info().Kind == target.KindDocker || !isLoopback(host) {
					Skip("the target's sockets are visible only for a server on this host's loopback (this one is " + e.tgt.Info().Kind + " at " + e.tgt.Addr() + ")")
				}
				if _, err := closeWait(port, nil); err != nil {
					Skip("the kernel's socket table is not readable here: " + err.Error())
				}
				ports := map[string]bool{}
				for i := 0; i < 50; i++ {
					rc := e.dialRaw(ctx)
					if i%2 == 0 {
						Expect(rc.send(request("GET", protocol.Target(AppID, newID()), nil))).To(Succeed())
						replies, err := rc.readReplies(ctx, 1)
						Expect(err).NotTo(HaveOccurred(), "GET on connection %d", i)
						status(replies[0], 404, "GET of an unknown key")
					}
					_, p, _ := net.SplitHostPort(rc.nc.LocalAddr().String())
					ports[p] = true
					Expect(rc.Close()).To(Succeed())
				}
				e.rec.note(0, "suite closed 50 connections (25 idle, 25 after a request)")
				Eventually(func() ([]string, error) { return closeWait(port, ports) }).WithContext(ctx).
					WithTimeout(refuseWindow).WithPolling(20*time.Millisecond).Should(BeEmpty(),
					"sockets of the target (port %s) still in CLOSE-WAIT %v after the clients closed: the server never closes a connection whose peer finished, "+
						"so each one holds a descriptor and whatever serves it", port, refuseWindow)
			})
		})
	})
}

// closeWait lists the sockets on this host whose local port is port, in
// state CLOSE-WAIT (the peer finished, the owner has not closed), whose
// remote port is in peers (nil: any), from /proc/net/tcp and tcp6.
func closeWait(port string, peers map[string]bool) ([]string, error) {
	want, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, err
	}
	var out []string
	read := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		read++
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "08" { // 08 = TCP_CLOSE_WAIT
				continue
			}
			lp, rp := hexPort(fields[1]), hexPort(fields[2])
			if lp != want || peers != nil && !peers[strconv.FormatUint(rp, 10)] {
				continue
			}
			out = append(out, fmt.Sprintf("%s→port %d", fields[1], rp))
		}
		fh.Close()
	}
	if read == 0 {
		return nil, fmt.Errorf("no /proc/net/tcp")
	}
	return out, nil
}

// hexPort returns the port of a /proc/net/tcp address ("0100007F:A5B8").
func hexPort(addr string) uint64 {
	i := strings.LastIndexByte(addr, ':')
	n, _ := strconv.ParseUint(addr[i+1:], 16, 16)
	return n
}
