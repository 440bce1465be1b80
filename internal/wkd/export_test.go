package wkd

// ZBase32 exposes the encoder for its test vectors.
var ZBase32 = zbase32

// Waiting reports how many lookups of address by the account wait for
// another's fetch.
func Waiting(c *Cache, accountID, address string) int {
	return c.flight.waiting(accountID + "\x00" + address)
}
