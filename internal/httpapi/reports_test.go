package httpapi

import (
	"net/url"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/messages"
)

func TestCSVCellsNeverStartAFormula(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"equals", "=1+2@patient.example", "'=1+2@patient.example"},
		{"plus", "+cmd", "'+cmd"},
		{"minus", "-2", "'-2"},
		{"at", "@SUM(A1)", "'@SUM(A1)"},
		{"tab", "\tx", "'\tx"},
		{"carriage return", "\rx", "'\rx"},
		{"plain address kept", "pat@patient.example", "pat@patient.example"},
		{"inner equals kept", "a=b@patient.example", "a=b@patient.example"},
		{"empty kept", "", ""},
	}
	for _, c := range cases {
		if got := defuseFormula(c.in); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := csvRecord(messages.RecipientRow{MessageID: "m1", CreatedAt: at, From: "a@clinic.example", Recipient: "-x@patient.example",
		State: "delivered", Attempts: 1, DeliveredAt: &at, SMTPCode: 250, Tags: []string{"=x", "a,b"}})
	if len(rec) != len(csvHeader) || rec[3] != "'-x@patient.example" || rec[7] != "2026-03-01T10:00:00Z" || rec[10] != "250" ||
		rec[11] != `["=x","a,b"]` {
		t.Errorf("record: %q", rec)
	}
}

func FuzzParseReportQuery(f *testing.F) {
	f.Add("from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&group_by=hour&limit=10")
	f.Add("from=2026-01-01&to=x&domain=%00&cursor=zz")
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, report := range []string{"summary", "recipients", "csv"} {
			q, p := parseReportQuery(values, report)
			if p != nil {
				if p.Status != 400 || len(p.Errors) != 1 || p.Errors[0].Field == "" {
					t.Fatalf("%s: problem %+v", report, p)
				}
				continue
			}
			if messages.ValidRange(q.From, q.To) != nil {
				t.Fatalf("%s: accepted a bad range %s to %s", report, q.From, q.To)
			}
		}
	})
}
