package protocol_test

import (
	"fmt"

	"github.com/aspstate/aspstate/protocol"
)

// The request target the ASP.NET client sends for a session: the application
// id, its SHA-256 hash and the session id, URL-encoded with lowercase hex.
func ExampleTarget() {
	fmt.Println(protocol.Target("/LM/W3SVC/2/ROOT", "bpr4mimb2vjnvtn2jc4yp3uo"))
	// Output: %2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo
}

// The key a server derives from a target: decoded, so both spellings name one item.
func ExampleKey() {
	fmt.Println(protocol.Key("%2fLM%2fW3SVC%2f1%2fROOT(x%3d)%2fs") == protocol.Key("/LM/W3SVC/1/ROOT(x=)/s"))
	// Output: true
}

// A PUT exactly as the .NET 4 client writes it (no space after most colons).
func ExampleNewSetRequest() {
	req := protocol.NewSetRequest("localhost", "%2fa", []byte("hi"), protocol.SetParams{Timeout: 20, LockCookie: 2})
	fmt.Printf("%q\n", req.Bytes())
	// Output: "PUT %2fa HTTP/1.1\r\nHost: localhost\r\nTimeout:20\r\nContent-Length:2\r\nExtraFlags:0\r\nLockCookie:2\r\n\r\nhi"
}

// Parsing a reply from the service and reading what a client needs.
func ExampleNewReply() {
	raw := "423 Locked\r\nX-AspNet-Version: 4.0.30319\r\nLockDate: 638000000000000000\r\nLockAge: 12\r\nLockCookie: 5\r\nCache-Control: private\r\nContent-Length: 0\r\n\r\n"
	resp, _ := protocol.ParseResponse([]byte(raw), protocol.Limits{})
	r, _ := protocol.NewReply(resp)
	fmt.Println(r.Status, r.LockCookie, r.LockAge, r.VersionMajor())
	// Output: 423 5 12 4
}
