package webhooks

// PublicAddr and ValidateURL expose internals to the tests.
var (
	PublicAddr  = publicAddr
	ValidateURL = (*Service).validateURL
)
