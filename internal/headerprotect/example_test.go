package headerprotect_test

import (
	"bytes"
	"fmt"

	"github.com/sealpost/sealpost/internal/headerprotect"
)

func ExampleProtect() {
	msg := "From: Clinic <noreply@clinic.example>\n" +
		"To: rita@patients.example\n" +
		"Bcc: audit@clinic.example\n" +
		"Subject: Your biopsy result\n" +
		"Message-ID: <m1@clinic.example>\n" +
		"Content-Type: text/plain; charset=utf-8\n" +
		"\n" +
		"Benign.\n"
	p, err := headerprotect.Protect([]byte(msg), "")
	if err != nil {
		panic(err)
	}
	var outer bytes.Buffer
	p.WriteOuter(&outer, "Content-Type: application/pkcs7-mime; smime-type=enveloped-data")
	fmt.Printf("--- outer, in clear ---\n%s", bytes.ReplaceAll(outer.Bytes(), []byte("\r\n"), []byte("\n")))
	fmt.Printf("--- inner, encrypted ---\n%s", bytes.ReplaceAll(p.Inner, []byte("\r\n"), []byte("\n")))
	// Output:
	// --- outer, in clear ---
	// From: Clinic <noreply@clinic.example>
	// To: rita@patients.example
	// Message-ID: <m1@clinic.example>
	// Subject: Encrypted message
	// MIME-Version: 1.0
	// Content-Type: application/pkcs7-mime; smime-type=enveloped-data
	//
	// --- inner, encrypted ---
	// From: Clinic <noreply@clinic.example>
	// To: rita@patients.example
	// Subject: Your biopsy result
	// Message-ID: <m1@clinic.example>
	// HP-Outer: From: Clinic <noreply@clinic.example>
	// HP-Outer: To: rita@patients.example
	// HP-Outer: Message-ID: <m1@clinic.example>
	// HP-Outer: Subject: Encrypted message
	// Content-Type: text/plain; charset=utf-8; hp=cipher
	//
	// Benign.
}
