package portal

import (
	"fmt"
	"html"
	"strings"
	"time"
)

// The notices' words. Link and code notices name the organisation and
// nothing about the message: not its subject, not its sender's person,
// not its content (HIPAA minimum necessary).

func linkNotice(org, link string, retention time.Duration) Notice {
	subject := "You have a secure message from " + org
	days := int(retention.Hours() / 24)
	text := fmt.Sprintf("%s sent you a secure message.\n\nOpen it here:\n%s\n\n"+
		"To protect your privacy, you will be asked for a one-time code that we email to this address.\n"+
		"The message can be read for up to %d days.\n", org, link, days)
	body := fmt.Sprintf(`<p>%s sent you a secure message.</p><p><a href="%s">Open the secure message</a></p>`+
		`<p>To protect your privacy, you will be asked for a one-time code that we email to this address. `+
		`The message can be read for up to %d days.</p>`, html.EscapeString(org), html.EscapeString(link), days)
	return Notice{Subject: subject, Text: text, HTML: body}
}

func codeNotice(org, code string, ttl time.Duration) Notice {
	minutes := int(ttl.Minutes())
	return Notice{
		Subject: "Your " + org + " secure message code",
		Text: fmt.Sprintf("Your one-time code is %s\n\nIt works once, for %d minutes. If you did not ask for it, ignore this email.\n",
			code, minutes),
	}
}

func replyNotice(recipient string, reply Content) Notice {
	var b strings.Builder
	fmt.Fprintf(&b, "%s replied through the secure portal:\n\n%s\n", recipient, reply.Text)
	return Notice{Subject: "Secure reply from " + recipient, Text: b.String(), Attachments: reply.Attachments}
}
