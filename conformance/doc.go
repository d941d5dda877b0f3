// Package conformance is the [MS-ASP] conformance suite: the rules of the
// ASP.NET State Server protocol as Ginkgo specs, one file per section of the
// specification (h2spec style), with the catalogue of rules and the runner
// that `aspstate conform` uses.
//
// The specs live in ordinary (non-test) files so they are compiled into the
// aspstate binary. Run declares the spec tree for one target and runs it with
// Ginkgo's RunSpecs, once per process; a matrix of targets runs one process
// per target and merges the reports (Matrix). Every rule is a container
// labelled "rule:ID" and "level:must|ref|client"; Catalogue lists them all.
// Each spec records the wire bytes of its connections, so a failure shows
// its transcript in the JSON, JUnit and HTML reports.
package conformance
