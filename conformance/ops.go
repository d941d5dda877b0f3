package conformance

import (
	"net"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/aspstate/aspstate/servers/stateserver"
	"github.com/aspstate/aspstate/servers/target"
)

// sectionOps: operational facts (PROTOCOL.md f, "Operations facts").
func sectionOps(e *env) {
	Describe("Operations", func() {
		e.Rule("ops-loopback-default", func() {
			e.It("defaults to 127.0.0.1:42424 with remote peers refused, and the in-process target is bound to loopback", func(ctx SpecContext) {
				if _, ok := e.tgt.(target.InProcess); !ok {
					Skip("only checkable for the in-process reference server (this target is " + e.tgt.Info().Kind + ")")
				}
				def := stateserver.DefaultConfig()
				Expect(def.AllowRemote).To(BeFalse(), "DefaultConfig().AllowRemote")
				host, _, err := net.SplitHostPort(def.Listen)
				Expect(err).NotTo(HaveOccurred())
				Expect(isLoopback(host)).To(BeTrue(), "DefaultConfig().Listen = %q is not loopback", def.Listen)
				host, _, err = net.SplitHostPort(e.tgt.Addr())
				Expect(err).NotTo(HaveOccurred())
				Expect(isLoopback(host)).To(BeTrue(), "the running target listens on %s", e.tgt.Addr())
			})
		})

		e.Rule("ops-loopback-only", func() {
			e.It("refuses a connection to its port on a second loopback address (127.0.0.2) when it listens on 127.0.0.1", func(ctx SpecContext) {
				if e.tgt.Info().Kind == target.KindDocker {
					Skip("the container runtime, not the server, owns a container's published port")
				}
				host, port, err := net.SplitHostPort(e.tgt.Addr())
				Expect(err).NotTo(HaveOccurred())
				if host != "127.0.0.1" {
					Skip("only checkable for a target addressed as 127.0.0.1 (this one is " + host + ")")
				}
				var d net.Dialer
				c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.2", port))
				if err == nil {
					c.Close()
				}
				Expect(err).To(HaveOccurred(), "the server at %s also accepted a connection at 127.0.0.2:%s: it is bound to a "+
					"wildcard address, so every interface of the host reaches it; Microsoft's service without "+
					"AllowRemoteConnection listens on loopback only. Bind it to 127.0.0.1 (aspstate serve --listen "+
					"127.0.0.1:PORT), or list this rule in --deviations if remote access is intended and filtered", e.tgt.Addr(), port)
			})
		})

		e.Rule("ops-restart-loses-state", func() {
			e.It("answers 404 for an item stored before the restart", func(ctx SpecContext) {
				r, ok := e.tgt.(target.Restarter)
				if !ok {
					Skip("the target cannot be restarted by the suite (" + e.tgt.Info().Kind + " targets do not implement target.Restarter)")
				}
				k := e.key()
				create(ctx, e.dial(ctx), k, content("restart"), 20)
				Expect(r.Restart(ctx)).To(Succeed(), "restarting the target")
				expectAbsent(ctx, e.dial(ctx), k, "GET after the restart")
			})
		})
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
