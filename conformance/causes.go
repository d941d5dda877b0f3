package conformance

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Cause is one root cause that several failing rules can share: what a
// server author fixes once to clear all of them.
type Cause struct {
	// ID names the cause in the JSON report.
	ID string `json:"id"`
	// Title is the cause in a few words ("lenient number parsing").
	Title string `json:"title"`
	// Consequence is what the cause does to real ASP.NET applications.
	Consequence string `json:"consequence"`
	// Fix is what to change in the server.
	Fix string `json:"fix"`
	// match tells whether a failed rule shows the cause.
	match func(rr RuleResult) bool
}

// CauseGroup is a cause and the failed rules that show it.
type CauseGroup struct {
	Cause Cause    `json:"cause"`
	Rules []string `json:"rules"`
}

// numberRules are the rules about the spelling and range of Timeout,
// LockCookie and ExtraFlags: a server that takes "abc" or "-1" as some
// number fails them all at once.
var numberRules = regexp.MustCompile(`^(2\.2\.3\.5-timeout-(nonnumeric|negative|max)|c\.1-3-|c\.2-[1235]-|c\.3-2-|3\.1\.5\.3-badcookie|3\.1\.5\.4-release-missing-cookie|robustness-numbers|c\.[12]-numbers)`)

// wantedRefusal matches failure messages where a 400 (or a close) was
// expected.
var wantedRefusal = regexp.MustCompile(`expected (status )?400|expected 400 or`)

// causes is the explicit list of known root causes, most specific first: a
// failed rule is grouped under the first that matches.
var causes = []Cause{
	{ID: "no-version-header", Title: "no X-AspNet-Version header",
		Consequence: "KB 2836759: the first session request after every application start fails with \"" + msgNeedV2 +
			"\"; later requests work, so the fault looks intermittent (PROTOCOL.md e.4)",
		Fix: "send X-AspNet-Version: 4.0.30319 (any major version >= 2) as the first header of every reply, 400, 404 and 423 included; " +
			"on Microsoft's service, set <httpRuntime enableVersionHeader=\"true\"/> in the machine-level web.config",
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool {
				return strings.Contains(s.Failure, "X-AspNet-Version") && strings.Contains(s.Failure, absent) ||
					serverSpoke(s.Transcript) && !strings.Contains(s.Transcript, "← "+"X-AspNet-Version")
			})
		}},
	{ID: "http-status-prefix", Title: `status lines start with "HTTP/1.1"`,
		Consequence: "Microsoft's service writes a bare \"200 OK\"; the native client is not proven to accept the prefix (PROTOCOL.md b.5)",
		Fix:         `write bare status lines: "200 OK", "400 Bad Request", "404 Not Found", "423 Locked"`,
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool { return strings.Contains(s.Transcript, "← HTTP/") })
		}},
	{ID: "lenient-numbers", Title: "lenient number parsing",
		Consequence: "a malformed, negative or out-of-range Timeout, LockCookie or ExtraFlags is taken as some number: an item can get " +
			"a timeout nobody asked for, or a lock be released or overwritten with a cookie the client never had",
		Fix: "parse Timeout, LockCookie and ExtraFlags as decimal Int32 values; answer 400 to anything else, to a negative Timeout or " +
			"LockCookie and to a Timeout above 525600 (PROTOCOL.md c.1 row 3, c.2 rows 1-3 and 5, c.3 row 2)",
		match: func(rr RuleResult) bool {
			return numberRules.MatchString(rr.ID) && anySpec(rr, func(s SpecResult) bool { return wantedRefusal.MatchString(s.Failure) })
		}},
	{ID: "locks-not-held", Title: "locks do not hold",
		Consequence: "two requests of one session run at once, so concurrent pages overwrite each other's session data (lost updates)",
		Fix: "an acquire answered 200 must lock the item until a release or PUT with its cookie (or a DELETE); meanwhile every GET, " +
			"acquire and PUT without that cookie gets 423 with the holder's LockCookie (PROTOCOL.md c.1 rows 7-8, c.2 row 6)",
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool {
				return strings.Contains(s.Failure, "expected status 423, observed reply: 200")
			})
		}},
	{ID: "waits-instead-of-refusing", Title: "requests the server cannot parse are neither answered nor closed",
		Consequence: "a confused client or a port scanner holds a connection (and whatever serves it) until some timeout",
		Fix:         "answer 400 (or close the connection) as soon as a request cannot be a valid one, and close when the client has closed its side",
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool { return strings.Contains(s.Failure, "neither answered nor closed") })
		}},
	{ID: "error-bodies", Title: "error replies carry a body",
		Consequence: "Microsoft's service sends none; a client reading Content-Length: 0 would take the body for the next reply",
		Fix:         "send Content-Length: 0 and no body with 400, 404 and 423",
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool {
				return regexp.MustCompile(`(body|Content-Length) of the (40[04]|423)`).MatchString(s.Failure)
			})
		}},
	{ID: "header-order", Title: "reply headers out of the service's order",
		Consequence: "harmless to the managed client, but a byte-exact replay or a strict parser sees a different server",
		Fix:         "write X-AspNet-Version, [ActionFlags], the verb's headers, Cache-Control: private, then Content-Length last",
		match: func(rr RuleResult) bool {
			return anySpec(rr, func(s SpecResult) bool { return strings.Contains(s.Failure, "header names in wire order") })
		}},
}

// minuteCause is the cause of timing failures when the minute probe found
// that the target's protocol minute is not the one the run assumed.
func minuteCause(probe string) Cause {
	return Cause{ID: "minute-mismatch", Title: "the target's protocol minute is not --minute",
		Consequence: probe + "; every rule that waits on the protocol clock then checks the wrong instant",
		Fix:         "run the suite with --minute set to the minute the server was started with (aspstate serve --minute), or start the server with the suite's minute",
		match:       func(rr RuleResult) bool { return rr.Timing }}
}

func anySpec(rr RuleResult, f func(SpecResult) bool) bool {
	return slices.ContainsFunc(rr.Specs, func(s SpecResult) bool { return s.State != "passed" && s.State != "skipped" && f(s) })
}

// statusLine matches a status line the server sent, in a transcript.
var statusLine = regexp.MustCompile(`(?m)  ← (HTTP/\S+ )?[0-9]{3} `)

// serverSpoke reports whether the transcript holds at least one status line
// from the server.
func serverSpoke(transcript string) bool { return statusLine.MatchString(transcript) }

// Causes groups the report's failed rules (deviations excluded) under their
// root causes, in the order of the causes list; rules no cause explains are
// returned apart.
func (r *RunReport) Causes() (groups []CauseGroup, unexplained []string) {
	list := causes
	if r.MinuteProbe != "" {
		list = append([]Cause{minuteCause(r.MinuteProbe)}, causes...)
	}
	byID := map[string]int{}
	for _, rr := range r.Rules {
		if rr.Result != ResultFailed {
			continue
		}
		i := slices.IndexFunc(list, func(c Cause) bool { return c.match(rr) })
		if i < 0 {
			unexplained = append(unexplained, rr.ID)
			continue
		}
		g, ok := byID[list[i].ID]
		if !ok {
			g = len(groups)
			byID[list[i].ID] = g
			groups = append(groups, CauseGroup{Cause: list[i]})
		}
		groups[g].Rules = append(groups[g].Rules, rr.ID)
	}
	slices.SortStableFunc(groups, func(a, b CauseGroup) int { return len(b.Rules) - len(a.Rules) })
	return groups, unexplained
}

// CauseGroups is the grouped part of Causes, for templates.
func (r *RunReport) CauseGroups() []CauseGroup {
	g, _ := r.Causes()
	return g
}

// Fix returns what to change so rule rr passes: its cause's fix when a
// known cause explains it, otherwise the rule itself as the behaviour to
// implement, with its evidence.
func (r *RunReport) Fix(rr RuleResult) string {
	groups, _ := r.Causes()
	for _, g := range groups {
		if slices.Contains(g.Rules, rr.ID) {
			return g.Cause.Fix
		}
	}
	info, _ := ruleByID(rr.ID)
	fix := "make the server do what the rule says: " + rr.Description
	if info.Evidence != "" {
		fix += " (evidence: " + info.Evidence + " in PROTOCOL.md)"
	}
	return fix
}

// WriteFailures writes, for a person fixing the server, the failures grouped
// by root cause (with consequence and fix), then every failed rule with its
// expected vs observed messages in full and its fix. It writes nothing when
// no rule failed.
func (r *RunReport) WriteFailures(w io.Writer) {
	groups, unexplained := r.Causes()
	if len(groups) == 0 && len(unexplained) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFAILURES BY CAUSE")
	for _, g := range groups {
		fmt.Fprintf(w, "%s: %d %s (%s)\n", g.Cause.Title, len(g.Rules), plural(len(g.Rules), "rule"), r.levelsOf(g.Rules))
		fmt.Fprintf(w, "  consequence: %s\n", g.Cause.Consequence)
		fmt.Fprintf(w, "  fix: %s\n", g.Cause.Fix)
		fmt.Fprintf(w, "  rules: %s\n", strings.Join(g.Rules, ", "))
	}
	if len(unexplained) > 0 {
		fmt.Fprintf(w, "no common cause: %d %s (%s): %s\n", len(unexplained), plural(len(unexplained), "rule"), r.levelsOf(unexplained), strings.Join(unexplained, ", "))
	}
	fmt.Fprintln(w, "\nFAILED RULES")
	for _, rr := range r.Rules {
		if rr.Result != ResultFailed {
			continue
		}
		info, _ := ruleByID(rr.ID)
		fmt.Fprintf(w, "FAIL %s (%s; evidence %s)\n  rule: %s\n", rr.ID, rr.Level, info.Evidence, rr.Description)
		for _, s := range rr.Specs {
			if s.State == "passed" || s.State == "skipped" {
				continue
			}
			fmt.Fprintf(w, "  It %s [%s]\n", s.Text, s.State)
			for _, l := range strings.Split(strings.TrimRight(s.Failure, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
		fmt.Fprintf(w, "  fix: %s\n", r.Fix(rr))
	}
}

// levelsOf counts rules by level: "must 2, advice 1".
func (r *RunReport) levelsOf(ids []string) string {
	n := map[string]int{}
	for _, id := range ids {
		if rr, ok := r.Rule(id); ok {
			n[rr.Level]++
		}
	}
	var parts []string
	for _, l := range AllLevels {
		if n[l] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", l, n[l]))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
