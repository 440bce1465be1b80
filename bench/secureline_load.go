package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// lineMessage is the API's MessageRequest as the figures send it.
type lineMessage struct {
	From        string           `json:"from"`
	To          []string         `json:"to"`
	Subject     string           `json:"subject"`
	Text        string           `json:"text"`
	HTML        string           `json:"html"`
	Attachments []lineAttachFile `json:"attachments,omitempty"`
	Encryption  string           `json:"encryption,omitempty"`
}

type lineAttachFile struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     []byte `json:"content"`
}

func (r *lineRun) message(v lineVariant, seq int) lineMessage {
	m := lineMessage{From: v.from, To: []string{lineRcpt(v.label, seq, r.cfg.Domains)}, Subject: lineSubject,
		Text: r.text, HTML: r.html, Encryption: v.pin}
	if r.attachment != nil {
		m.Attachments = []lineAttachFile{{Filename: lineAttachmentName, ContentType: "text/csv", Content: r.attachment}}
	}
	return m
}

// post sends messages from..to-1 of v through POST /v1/messages/batch
// and records each one's acceptance (the batch answer); every item must
// be 202.
func (r *lineRun) post(ctx context.Context, v lineVariant, from, to int, acc *accepted, progress func(int)) error {
	size := r.cfg.Batch
	var next, done atomic.Int64
	next.Store(int64(from))
	return forEachClient(r.cfg.BatchClients, func() error {
		for {
			first := int(next.Add(int64(size))) - size
			if first >= to || ctx.Err() != nil {
				return ctx.Err()
			}
			last := min(first+size, to)
			msgs := make([]lineMessage, 0, last-first)
			for seq := first; seq < last; seq++ {
				msgs = append(msgs, r.message(v, seq))
			}
			status, out, err := r.api.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs})
			now := time.Now()
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("POST /v1/messages/batch: %d %.300s %v", status, out, err)
			}
			if err := allAccepted(out, len(msgs)); err != nil {
				return fmt.Errorf("messages %d-%d: %w", first, last-1, err)
			}
			for seq := first; seq < last; seq++ {
				acc.at[seq] = now
			}
			if progress != nil {
				progress(int(done.Add(int64(len(msgs)))))
			}
		}
	})
}

// allAccepted checks that a batch answer accepted all want items.
func allAccepted(answer []byte, want int) error {
	var res struct {
		Data []struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Detail string `json:"detail"`
			} `json:"error"`
		} `json:"data"`
	}
	if err := json.Unmarshal(answer, &res); err != nil || len(res.Data) != want {
		return fmt.Errorf("unexpected batch answer %.300s", answer)
	}
	for i, item := range res.Data {
		if item.Status != http.StatusAccepted {
			why := ""
			if item.Error != nil {
				why = item.Error.Type + ": " + item.Error.Detail
			}
			return fmt.Errorf("item %d: status %d %s", i, item.Status, why)
		}
	}
	return nil
}

// lineBody is a visit summary of about size bytes, two fifths text and
// three fifths HTML, each carrying lineMarker.
func lineBody(size int) (text, html string) {
	para := "Thank you for visiting the clinic today. Your blood pressure was 128/82 and your weight is stable. " +
		"Keep taking your medication as prescribed and book a follow-up appointment in three months.\n"
	textSize := max(size*2/5, 200)
	text = "Reference " + lineMarker + "\n\n" + strings.Repeat(para, textSize/len(para)+1)[:textSize]
	var h strings.Builder
	h.WriteString(`<!DOCTYPE html><html><body><h1>Visit summary</h1><p>Reference ` + lineMarker + `</p><table>` + "\n")
	for i := 1; h.Len() < size-textSize-30; i++ {
		fmt.Fprintf(&h, "<tr><td>Item %d</td><td>Thank you for visiting the clinic today; keep taking your medication as prescribed.</td></tr>\n", i)
	}
	h.WriteString("</table></body></html>\n")
	return text, h.String()
}

// lineAttachment is a CSV of about size bytes.
func lineAttachment(size int) []byte {
	var b strings.Builder
	b.WriteString("date,measure,value\n")
	for i := 0; b.Len() < size; i++ {
		b.WriteString("2026-12-0" + strconv.Itoa(1+i%9) + ",systolic blood pressure," + strconv.Itoa(110+i%30) + "\n")
	}
	return []byte(b.String())
}
