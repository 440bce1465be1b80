package tracking

import "strings"

// User-agent classes recorded with opens and clicks. The raw User-Agent
// and the client address are not stored: they identify patients' devices
// and places, and the class is what senders act on (a proxy open is not
// a human reading).
const (
	AgentAppleMPP = "apple-mpp-proxy" // Apple Mail Privacy Protection prefetch
	AgentGmail    = "gmail-proxy"     // Gmail's image proxy
	AgentYahoo    = "yahoo-proxy"     // Yahoo Mail's image proxy
	AgentScanner  = "scanner"         // security link scanners and bots
	AgentBrowser  = "browser"
	AgentMailApp  = "mail-client" // desktop and mobile mail programs
	AgentUnknown  = "unknown"
)

// classifyAgent names the class of a User-Agent. It is a heuristic over
// well-known substrings, not an identification.
func classifyAgent(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return AgentUnknown
	}
	// Apple's privacy proxy fetches remote content with a bare
	// "Mozilla/5.0" and nothing else.
	if ua == "Mozilla/5.0" {
		return AgentAppleMPP
	}
	l := strings.ToLower(ua)
	switch {
	case strings.Contains(l, "googleimageproxy"):
		return AgentGmail
	case strings.Contains(l, "yahoomailproxy"):
		return AgentYahoo
	case containsAny(l, "bot", "spider", "crawl", "scanner", "preview", "barracuda", "mimecast", "proofpoint", "safelinks",
		"curl/", "wget/", "python-requests", "go-http-client", "headless"):
		return AgentScanner
	case containsAny(l, "microsoft outlook", "ms-office", "thunderbird", "applemail", "mail/", "outlook-ios", "outlook-android"):
		return AgentMailApp
	case strings.HasPrefix(l, "mozilla/"):
		return AgentBrowser
	}
	return AgentUnknown
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
