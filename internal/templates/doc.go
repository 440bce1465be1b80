// Package templates owns stored, versioned message templates of an
// account and their language: Go templates (text/template for the
// subject and text part, html/template for the HTML part, so data is
// escaped for its context) limited to an allow-listed function set and
// to the data map, validated when a version is created and rendered
// within output, step and time limits. A version is immutable; a
// template names its active version. It does not send: package messages
// renders a version into each recipient's message.
package templates
