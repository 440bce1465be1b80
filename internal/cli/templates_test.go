package cli_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

type templateAnswer struct {
	ID            string `json:"id"`
	ActiveVersion int    `json:"active_version"`
	LatestVersion int    `json:"latest_version"`
}

type problemAnswer struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Errors []struct {
		Field, Message string
	} `json:"errors"`
}

func TestTemplatesEndToEnd(t *testing.T) {
	w := serveWithMail(t)
	api, owner := w.api, w.owner
	verifiedSender(t, w)

	// Create, preview, version.
	create := `{"name":"appointment","subject":"Appointment for {{.patient.first}}",
		"html":"<p>Dear {{.patient.first}},</p><p>{{.note}}</p><p>On {{date \"Jan 2\" .appt}}.</p>"}`
	status, _, body := api.call("POST", "/v1/templates", owner, "application/json", create)
	var tpl templateAnswer
	if status != 201 || json.Unmarshal(body, &tpl) != nil || tpl.ActiveVersion != 1 {
		t.Fatalf("create: %d %s", status, body)
	}
	status, _, body = api.call("POST", "/v1/templates/"+tpl.ID+"/render", owner, "application/json",
		`{"data":{"patient":{"first":"Ada"},"note":"<script>x()</script>","appt":"2026-12-24T09:00:00Z"}}`)
	var out struct{ Subject, Text, HTML string }
	if status != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("render: %d %s", status, body)
	}
	if out.Subject != "Appointment for Ada" || !strings.Contains(out.HTML, "&lt;script&gt;") || strings.Contains(out.HTML, "<script>") ||
		!strings.Contains(out.Text, "On Dec 24.") {
		t.Errorf("render: %+v", out)
	}
	status, _, body = api.call("POST", "/v1/templates/"+tpl.ID+"/render", owner, "application/json", `{"data":{"patient":{}}}`)
	var p problemAnswer
	if status != 422 || json.Unmarshal(body, &p) != nil || p.Type != "urn:sealpost:problem:template-render" ||
		len(p.Errors) != 1 || p.Errors[0].Field != "subject" || !strings.Contains(p.Errors[0].Message, "missing variable patient.first") {
		t.Errorf("render with a missing variable: %d %s", status, body)
	}
	status, _, body = api.call("POST", "/v1/templates/"+tpl.ID+"/versions", owner, "application/json",
		`{"subject":"v2 {{.patient.first}}","text":"Hello {{.patient.first}}"}`)
	if status != 201 || json.Unmarshal(body, &tpl) != nil || tpl.ActiveVersion != 1 || tpl.LatestVersion != 2 {
		t.Fatalf("add version: %d %s", status, body)
	}
	if status, _, body := api.call("POST", "/v1/templates/"+tpl.ID+"/render", owner, "application/json",
		`{"version":2,"data":{"patient":{"first":"Ada"}}}`); status != 200 || !strings.Contains(string(body), `"subject":"v2 Ada"`) {
		t.Errorf("render version 2: %d %s", status, body)
	}
	if status, _, body := api.call("GET", "/v1/templates?limit=1", owner, "", ""); status != 200 || !strings.Contains(string(body), tpl.ID) {
		t.Errorf("list: %d %s", status, body)
	}

	// Per-recipient data: each recipient gets its own message, in its own
	// transaction, and sees only its own data.
	send := `{"from":"Clinic <reminders@clinic.example>","to":["ada@patient.example","bob@patient.example"],
		"template_id":"` + tpl.ID + `","template_data":{"note":"Bring your card.","appt":"2026-12-24T09:00:00Z","patient":{"first":"there"}},
		"recipient_data":{"Ada@patient.example":{"patient":{"first":"Ada"}},"bob@patient.example":{"patient":{"first":"Bob"}}}}`
	if status, _, body := api.call("POST", "/v1/messages", owner, "application/json", send); status != 202 {
		t.Fatalf("send with recipient data: %d %s", status, body)
	}
	got := w.waitForSink(t, 2)
	msgID := regexp.MustCompile(`(?m)^Message-Id: (.*)\r$|(?m)^Message-ID: (.*)\r$`)
	ids := map[string]bool{}
	for _, m := range got {
		if len(m.Rcpts) != 1 {
			t.Fatalf("a personalised message went to %d recipients in one transaction", len(m.Rcpts))
		}
		data := string(m.Data)
		mine, theirs := "Ada", "Bob"
		if m.Rcpts[0] == "bob@patient.example" {
			mine, theirs = theirs, mine
		}
		if !strings.Contains(data, "Subject: Appointment for "+mine) || !strings.Contains(data, "Dear "+mine) ||
			strings.Contains(data, theirs) || !strings.Contains(data, "Bring your card.") {
			t.Errorf("the message to %s:\n%s", m.Rcpts[0], data)
		}
		if !strings.Contains(data, "a=ed25519-sha256") {
			t.Errorf("the message to %s is not signed", m.Rcpts[0])
		}
		ids[msgID.FindString(data)] = true
	}
	if len(ids) != 1 {
		t.Errorf("the recipients' messages carry %d Message-IDs, want one", len(ids))
	}

	// Without per-recipient data the recipients share one message.
	shared := `{"from":"reminders@clinic.example","to":["cy@patient.example","di@patient.example"],"template_id":"` + tpl.ID +
		`","template_version":2,"template_data":{"patient":{"first":"all"}}}`
	if status, _, body := api.call("POST", "/v1/messages", owner, "application/json", shared); status != 202 {
		t.Fatalf("send with shared data: %d %s", status, body)
	}
	got = w.waitForSink(t, 3)
	if last := got[2]; len(last.Rcpts) != 2 || !strings.Contains(string(last.Data), "Subject: v2 all") {
		t.Errorf("shared message: %d recipients\n%s", len(last.Rcpts), last.Data)
	}

	// A batch: a bad template use spoils only its own item.
	batch := `{"messages":[` + shared + `,{"from":"reminders@clinic.example","to":["cy@patient.example"],"template_id":"nope"}]}`
	status, _, body = api.call("POST", "/v1/messages/batch", owner, "application/json", batch)
	if status != 200 || !strings.Contains(string(body), `"status":202`) || !strings.Contains(string(body), "unknown-template") {
		t.Errorf("batch: %d %s", status, body)
	}
	w.waitForSink(t, 4)

	// Another account: the template does not exist for it.
	code, cout, cerr := run(t, w.env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", cout, cerr)
	}
	other := parseCreds(cout)
	otherKey := other["client_id"] + ":" + other["client_secret"]
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/templates/" + tpl.ID, ""},
		{"POST", "/v1/templates/" + tpl.ID + "/render", `{"data":{}}`},
		{"POST", "/v1/templates/" + tpl.ID + "/versions", `{"text":"x"}`},
		{"PUT", "/v1/templates/" + tpl.ID + "/active-version", `{"version":1}`},
		{"DELETE", "/v1/templates/" + tpl.ID, ""},
	} {
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		if status, _, body := api.call(c.method, c.path, otherKey, ct, c.body); status != 404 {
			t.Errorf("another account: %s %s: %d %s", c.method, c.path, status, body)
		}
	}
	if status, _, body := api.call("GET", "/v1/templates", otherKey, "", ""); status != 200 || strings.Contains(string(body), tpl.ID) {
		t.Errorf("another account lists: %d %s", status, body)
	}

	// Bad input: each refused with its problem type, nothing sent.
	msg := func(extra string) string {
		return `{"from":"reminders@clinic.example","to":["ada@patient.example"]` + extra + `}`
	}
	tid := `,"template_id":"` + tpl.ID + `"`
	bad := []struct {
		name, key, path, body string
		status                int
		typ, field            string
	}{
		{"an unknown template", owner, "/v1/messages", msg(`,"template_id":"0190aaaa-0000-7000-8000-000000000000"`), 422, "unknown-template", "template_id"},
		{"another account's template is unknown", otherKey, "/v1/messages", msg(tid), 422, "unknown-template", "template_id"},
		{"an unknown version", owner, "/v1/messages", msg(tid + `,"template_version":9`), 422, "unknown-template", "template_id"},
		{"subject with a template", owner, "/v1/messages", msg(tid + `,"subject":"x"`), 422, "validation", "subject"},
		{"html with a template", owner, "/v1/messages", msg(tid + `,"html":"x"`), 422, "validation", "html"},
		{"recipient data for a stranger", owner, "/v1/messages", msg(tid + `,"template_data":{"patient":{"first":"x"}},"recipient_data":{"eve@evil.example":{}}`), 422, "validation", "recipient_data"},
		{"recipient data without a template", owner, "/v1/messages", msg(`,"text":"x","recipient_data":{"ada@patient.example":{}}`), 422, "validation", "recipient_data"},
		{"a missing variable", owner, "/v1/messages", msg(tid), 422, "template-render", "subject"},
		{"a missing variable of one recipient", owner, "/v1/messages", msg(tid + `,"template_data":{"patient":{"first":"x"}},"recipient_data":{"ada@patient.example":{"patient":null}}`), 422, "template-render", "subject"},
		{"recipient data that is not an object", owner, "/v1/messages", msg(tid + `,"recipient_data":{"ada@patient.example":"x"}`), 422, "validation", "recipient_data"},
		{"a malformed template", owner, "/v1/templates", `{"name":"bad","text":"ok\n{{.x"}`, 422, "template-invalid", "text"},
		{"a disallowed function", owner, "/v1/templates", `{"name":"bad","text":"{{call .x}}"}`, 422, "template-invalid", "text"},
		{"an unknown policy", owner, "/v1/templates", `{"name":"bad","text":"x","missing_variables":"ignore"}`, 422, "template-invalid", "missing_variables"},
		{"a duplicate name", owner, "/v1/templates", `{"name":"appointment","text":"x"}`, 409, "conflict", "name"},
		{"no name", owner, "/v1/templates", `{"text":"x"}`, 422, "validation", "name"},
		{"an unknown field", owner, "/v1/templates", `{"name":"x","text":"x","engine":"jinja"}`, 400, "unknown-field", ""},
		{"an unknown render field", owner, "/v1/templates/" + tpl.ID + "/render", `{"data":{},"strict":true}`, 400, "unknown-field", ""},
	}
	for _, c := range bad {
		status, _, body := api.call("POST", c.path, c.key, "application/json", c.body)
		var p problemAnswer
		_ = json.Unmarshal(body, &p)
		if status != c.status || p.Type != "urn:sealpost:problem:"+c.typ || (c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field)) {
			t.Errorf("%s: %d %s, want %d %s on %q", c.name, status, body, c.status, c.typ, c.field)
		}
	}
	if n := len(w.sink.Messages()); n != 4 {
		t.Errorf("the sink holds %d messages, want 4 (the refused sends sent nothing)", n)
	}

	// Activation and deletion.
	if status, _, body := api.call("PUT", "/v1/templates/"+tpl.ID+"/active-version", owner, "application/json", `{"version":2}`); status != 200 || !strings.Contains(string(body), `"active_version":2`) {
		t.Errorf("activate: %d %s", status, body)
	}
	if status, _, body := api.call("PUT", "/v1/templates/"+tpl.ID+"/active-version", owner, "application/json", `{"version":7}`); status != 404 {
		t.Errorf("activate a missing version: %d %s", status, body)
	}
	if status, _, body := api.call("DELETE", "/v1/templates/"+tpl.ID, owner, "", ""); status != 204 {
		t.Errorf("delete: %d %s", status, body)
	}
	if status, _, body := api.call("POST", "/v1/messages", owner, "application/json", msg(tid)); status != 422 || !strings.Contains(string(body), "unknown-template") {
		t.Errorf("send with a deleted template: %d %s", status, body)
	}
}
