// Package dlp finds protected health information (PHI) and other US
// personal identifiers in the content of an outgoing message: its
// subject, its text and HTML bodies, its attachment names and the
// attachments that carry text (text/*, CSV, JSON, XML).
//
// A Scanner turns a Message into a Result: typed findings, each with a
// confidence and a location (part, byte offset and length in that part's
// normalised text), a message risk score, and a ContainsPHI verdict. A
// finding never holds the text it matched, so results can be stored and
// logged without leaking what they describe.
//
// The scanner fails closed: a part it cannot read (unknown attachment
// type, bad transfer encoding, oversize part, malformed JSON or XML) or a
// scan that runs out of time marks the result Unscannable, and an
// unscannable message counts as containing PHI.
//
// This package only inspects content. What to do about a finding (allow,
// encrypt, quarantine, block) belongs to the policy engine, and storing
// results belongs to its callers.
package dlp
