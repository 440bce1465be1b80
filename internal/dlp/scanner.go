package dlp

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"time"
)

// Type names what a finding is. The values are stable: they are stored
// and used in policies.
type Type string

// Finding types.
const (
	SSN          Type = "ssn"           // US Social Security number
	MBI          Type = "mbi"           // Medicare Beneficiary Identifier
	MRN          Type = "mrn"           // medical record number
	NPI          Type = "npi"           // National Provider Identifier
	DEA          Type = "dea"           // DEA registration number
	ICD10        Type = "icd10"         // ICD-10-CM diagnosis code
	CPT          Type = "cpt"           // CPT procedure code
	DOB          Type = "dob"           // date of birth
	PaymentCard  Type = "payment_card"  // payment card number (PAN)
	ABARouting   Type = "aba_routing"   // ABA bank routing number
	Phone        Type = "phone"         // US (NANP) telephone number
	Address      Type = "address"       // US street address
	ClinicalTerm Type = "clinical_term" // diagnosis or drug from the built-in dictionary
	// AccountTerm is a term from the account's own dictionary: one the
	// account has said reveals a patient's health when it reaches them.
	AccountTerm Type = "account_term"
)

// Types lists every finding type, in a stable order.
var Types = []Type{SSN, MBI, MRN, NPI, DEA, ICD10, CPT, DOB, PaymentCard, ABARouting, Phone, Address, ClinicalTerm, AccountTerm}

// PartKind says which part of a message a finding is in.
type PartKind string

// Part kinds.
const (
	PartSubject        PartKind = "subject"
	PartText           PartKind = "text"
	PartHTML           PartKind = "html"
	PartAttachment     PartKind = "attachment"
	PartAttachmentName PartKind = "attachment_name"
)

// Likely is the confidence from which a finding is taken as real rather
// than as a weak signal. The corpus test measures precision and recall at
// this level.
const Likely = 0.5

// Finding is one detected identifier. It deliberately has no field for
// the matched text: the location is enough to find it again in the
// message, and nothing sensitive can leak through a stored or logged
// finding.
type Finding struct {
	Type       Type     `json:"type"`
	Confidence float64  `json:"confidence"`
	Part       PartKind `json:"part"`
	// Index is the attachment's position (from 0) for attachment parts
	// and 0 otherwise.
	Index int `json:"index"`
	// Offset and Length are in bytes, in the part's normalised text (see
	// Normalise and HTMLText), not in the raw part.
	Offset int `json:"offset"`
	Length int `json:"length"`
}

// Reason says why a part could not be scanned. The values are stable and
// never carry content.
type Reason string

// Reasons for an unscannable result.
const (
	ReasonTimeout          Reason = "timeout"           // the scan ran past its deadline
	ReasonCanceled         Reason = "canceled"          // the caller's context was cancelled
	ReasonOversize         Reason = "oversize"          // a part is larger than MaxPartBytes
	ReasonUnreadableType   Reason = "unreadable_type"   // an attachment type we cannot read (PDF, image, archive...)
	ReasonBadEncoding      Reason = "bad_encoding"      // transfer encoding unknown or malformed
	ReasonUnknownCharset   Reason = "unknown_charset"   // declared charset unknown
	ReasonBinaryContent    Reason = "binary_content"    // a text part holding binary data
	ReasonParseError       Reason = "parse_error"       // malformed HTML, JSON or XML
	ReasonTooManyParts     Reason = "too_many_parts"    // more attachments than MaxAttachments
	ReasonMessageMalformed Reason = "message_malformed" // a raw message that is not valid MIME
)

// Problem is one part the scanner could not read.
type Problem struct {
	Part   PartKind `json:"part"`
	Index  int      `json:"index"`
	Reason Reason   `json:"reason"`
}

// Result is what a scan found. It holds no message content.
type Result struct {
	Findings []Finding `json:"findings"`
	// Counts counts findings by type, including any beyond MaxFindings.
	Counts map[Type]int `json:"counts"`
	// Truncated is true when more than MaxFindings were found; Findings
	// then holds the first MaxFindings.
	Truncated bool `json:"truncated,omitempty"`
	// Score is the message risk score in [0, 1] (see docs/dlp.md); 1 when
	// Unscannable.
	Score float64 `json:"score"`
	// ContainsPHI is the verdict: Unscannable, or Score at or above the
	// scanner's threshold.
	ContainsPHI bool `json:"contains_phi"`
	// Unscannable is true when some part could not be read or the scan
	// did not finish; Reason is the first problem's reason.
	Unscannable bool      `json:"unscannable,omitempty"`
	Reason      Reason    `json:"reason,omitempty"`
	Problems    []Problem `json:"problems,omitempty"`
}

// Attachment is a file attached to a message. Content is as given to the
// scanner: raw bytes when TransferEncoding is empty, or still encoded in
// base64 or quoted-printable (RFC 2045 §6) as it came out of a MIME part.
type Attachment struct {
	Filename         string
	ContentType      string // media type with parameters; sniffed when empty
	TransferEncoding string // "", "7bit", "8bit", "binary", "base64" or "quoted-printable"
	Content          []byte
}

// Message is the content the scanner reads.
type Message struct {
	Subject     string
	Text        string
	HTML        string
	Attachments []Attachment
}

// MRNPattern is an account's format for its medical record numbers.
type MRNPattern struct {
	// Pattern is an RE2 regular expression (Go syntax) matching one
	// record number, such as `\d{8}` or `MRN-\d{7}`.
	Pattern string
	// Anywhere lets the pattern match without a nearby context word
	// ("MRN", "medical record", "chart"...). Only for formats distinctive
	// enough not to match other numbers.
	Anywhere bool
}

// Options configures a Scanner. The zero value is usable.
type Options struct {
	// MaxPartBytes is the largest part (decoded) the scanner reads; a
	// larger one makes the result unscannable. Default 10 MiB.
	MaxPartBytes int
	// MaxAttachments is the most attachments scanned; more make the
	// result unscannable. Default 100.
	MaxAttachments int
	// Timeout bounds one scan; past it the result is unscannable.
	// Default 5s. The caller's context deadline applies too.
	Timeout time.Duration
	// Threshold is the risk score from which ContainsPHI is true.
	// Default 0.5; must be in (0, 1].
	Threshold float64
	// MaxFindings bounds the findings kept per scan (Counts still counts
	// them all). Default 1000.
	MaxFindings int
	// MRNPatterns are the account's medical record number formats, on
	// top of the built-in one (a context word followed by up to three
	// letters and 5 to 12 digits). At most 20, each at most 200 bytes.
	MRNPatterns []MRNPattern
	// Terms are the account's clinical terms (diagnoses, drugs, services)
	// whose mention alone makes a message PHI: found, each is an
	// AccountTerm finding that reaches the default threshold by itself
	// (a built-in dictionary term does not, see score.go). At most 5000,
	// each 2 to 100 bytes.
	Terms []string
	// NoBuiltinTerms drops the built-in dictionary, leaving only Terms.
	NoBuiltinTerms bool
	// Now is the clock used to reject future dates of birth; default
	// time.Now.
	Now func() time.Time
}

// Limits on account-supplied options.
const (
	maxMRNPatterns   = 20
	maxPatternLen    = 200
	maxTerms         = 5000
	maxTermLen       = 100
	defaultPartBytes = 10 << 20
)

// OptionError reports an invalid option, naming it as the API would
// (for example "mrn_patterns[2]"). The message never repeats the value.
type OptionError struct {
	Field   string
	Message string
}

func (e *OptionError) Error() string { return "dlp: " + e.Field + ": " + e.Message }

// Scanner scans messages. It is immutable once built and safe for
// concurrent use; build one per account configuration and reuse it.
type Scanner struct {
	opts     Options
	dict     *dictionary
	accounts []compiledMRN
	icd      icdCodes
}

type compiledMRN struct {
	re       *regexp.Regexp
	anywhere bool
}

// New builds a Scanner, validating and compiling the account's patterns
// and terms.
func New(opts Options) (*Scanner, error) {
	if opts.MaxPartBytes <= 0 {
		opts.MaxPartBytes = defaultPartBytes
	}
	if opts.MaxAttachments <= 0 {
		opts.MaxAttachments = 100
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Threshold == 0 {
		opts.Threshold = 0.5
	}
	if !(opts.Threshold > 0 && opts.Threshold <= 1) {
		return nil, &OptionError{Field: "threshold", Message: "must be greater than 0 and at most 1"}
	}
	if opts.MaxFindings <= 0 {
		opts.MaxFindings = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Scanner{opts: opts, icd: loadICD()}
	pats, err := compileMRN(opts.MRNPatterns)
	if err != nil {
		return nil, err
	}
	s.accounts = pats
	d, err := newDictionary(opts.Terms, !opts.NoBuiltinTerms)
	if err != nil {
		return nil, err
	}
	s.dict = d
	return s, nil
}

// compileMRN compiles account patterns. Go's regexp is RE2: matching is
// linear in the input whatever the pattern, so a pattern cannot make a
// scan backtrack exponentially; the limits here bound its size, and a
// pattern that matches the empty string would match everywhere.
func compileMRN(in []MRNPattern) ([]compiledMRN, error) {
	if len(in) > maxMRNPatterns {
		return nil, &OptionError{Field: "mrn_patterns", Message: fmt.Sprintf("at most %d patterns", maxMRNPatterns)}
	}
	var out []compiledMRN
	for i, p := range in {
		field := fmt.Sprintf("mrn_patterns[%d]", i)
		if p.Pattern == "" || len(p.Pattern) > maxPatternLen {
			return nil, &OptionError{Field: field, Message: fmt.Sprintf("1 to %d bytes", maxPatternLen)}
		}
		if _, err := syntax.Parse(p.Pattern, syntax.Perl); err != nil {
			var se *syntax.Error
			msg := "not a valid regular expression"
			if errors.As(err, &se) {
				msg += " (" + string(se.Code) + ")"
			}
			return nil, &OptionError{Field: field, Message: msg}
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return nil, &OptionError{Field: field, Message: "not a valid regular expression"}
		}
		if re.MatchString("") {
			return nil, &OptionError{Field: field, Message: "must not match the empty string"}
		}
		out = append(out, compiledMRN{re: re, anywhere: p.Anywhere})
	}
	return out, nil
}

// Scan scans m. It never returns an error: what it cannot read makes the
// result Unscannable, which counts as PHI (fail closed).
func (s *Scanner) Scan(ctx context.Context, m Message) Result {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sc := &scan{s: s, ctx: ctx, res: Result{Counts: map[Type]int{}}}
	sc.run(m)
	sc.finish()
	return sc.res
}

// scan is the state of one Scan call.
type scan struct {
	s    *Scanner
	ctx  context.Context
	res  Result
	stop bool // the context is done: no further parts are read
}

func (sc *scan) run(m Message) {
	sc.part(PartSubject, 0, m.Subject, false)
	sc.part(PartText, 0, m.Text, false)
	sc.part(PartHTML, 0, m.HTML, true)
	for i, a := range m.Attachments {
		if sc.stop {
			return
		}
		if i >= sc.s.opts.MaxAttachments {
			sc.fail(PartAttachment, i, ReasonTooManyParts)
			return
		}
		sc.part(PartAttachmentName, i, filenameText(a.Filename), false)
		text, isHTML, reason := attachmentText(a, sc.s.opts.MaxPartBytes)
		if reason != "" {
			sc.fail(PartAttachment, i, reason)
			continue
		}
		sc.part(PartAttachment, i, text, isHTML)
	}
}

// part scans one part's text (HTML when isHTML).
func (sc *scan) part(kind PartKind, index int, raw string, isHTML bool) {
	if sc.stop || raw == "" {
		return
	}
	if sc.checkDone(kind, index) {
		return
	}
	if len(raw) > sc.s.opts.MaxPartBytes {
		sc.fail(kind, index, ReasonOversize)
		return
	}
	text := raw
	if isHTML {
		var err error
		if text, err = HTMLText(raw); err != nil {
			sc.fail(kind, index, ReasonParseError)
			return
		}
	}
	text = Normalise(text)
	a := newAnalysis(sc.ctx, sc.s, text)
	a.run()
	if a.err != nil {
		sc.checkDone(kind, index)
		return
	}
	for _, f := range a.findings {
		f.Part, f.Index = kind, index
		sc.add(f)
	}
	for t, n := range a.overflow {
		sc.res.Counts[t] += n
		sc.res.Truncated = true
	}
}

func (sc *scan) add(f Finding) {
	sc.res.Counts[f.Type]++
	if len(sc.res.Findings) >= sc.s.opts.MaxFindings {
		sc.res.Truncated = true
		return
	}
	sc.res.Findings = append(sc.res.Findings, f)
}

// checkDone records a timeout or cancellation and stops the scan.
func (sc *scan) checkDone(kind PartKind, index int) bool {
	err := sc.ctx.Err()
	if err == nil {
		return false
	}
	r := ReasonTimeout
	if errors.Is(err, context.Canceled) {
		r = ReasonCanceled
	}
	sc.fail(kind, index, r)
	sc.stop = true
	return true
}

func (sc *scan) fail(kind PartKind, index int, r Reason) {
	if !sc.res.Unscannable {
		sc.res.Unscannable, sc.res.Reason = true, r
	}
	sc.res.Problems = append(sc.res.Problems, Problem{Part: kind, Index: index, Reason: r})
}

func (sc *scan) finish() {
	if sc.res.Findings == nil {
		sc.res.Findings = []Finding{}
	}
	sc.res.Score = riskScore(sc.res.Findings)
	if sc.res.Unscannable {
		sc.res.Score = 1
	}
	sc.res.ContainsPHI = sc.res.Unscannable || sc.res.Score >= sc.s.opts.Threshold
}
