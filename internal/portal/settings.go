package portal

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"strings"

	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/vault"
)

// Settings are an account's portal look. How long its messages stay
// readable is its retention policy's portal_message_days (package
// retention, Options.Lifetime), not a portal setting.
type Settings struct {
	// DisplayName is the organisation named on pages and notices ("" : the
	// account's name).
	DisplayName string `json:"display_name"`
	// LogoURL is a data: URL of a PNG, JPEG, GIF or WebP image of at most
	// 96 KiB: pages load nothing from third parties, so a logo travels
	// with the page ("" : none).
	LogoURL string `json:"logo_url"`
	// PrimaryColor is "#rrggbb" ("" : the platform colour).
	PrimaryColor string `json:"primary_color"`
}

// DefaultColor is the platform's primary colour.
const DefaultColor = "#0b6e4f"

var (
	colorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	logoPattern  = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$`)
)

// MaxLogoBytes bounds the logo data URL.
const MaxLogoBytes = 96 << 10

// Validate checks settings.
func (st Settings) Validate() error {
	if len(st.DisplayName) > 100 || strings.ContainsFunc(st.DisplayName, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &FieldError{Field: "display_name", Message: "at most 100 printable characters"}
	}
	if st.LogoURL != "" {
		if len(st.LogoURL) > MaxLogoBytes || !logoPattern.MatchString(st.LogoURL) {
			return &FieldError{Field: "logo_url", Message: "a base64 data: URL of a PNG, JPEG, GIF or WebP image, at most 96 KiB"}
		}
		_, data, _ := strings.Cut(st.LogoURL, ",")
		if _, err := base64.StdEncoding.DecodeString(data); err != nil {
			return &FieldError{Field: "logo_url", Message: "the image is not valid base64"}
		}
	}
	if st.PrimaryColor != "" && !colorPattern.MatchString(st.PrimaryColor) {
		return &FieldError{Field: "primary_color", Message: "a colour as #rrggbb"}
	}
	return nil
}

// Settings returns an account's portal settings (zero values when unset).
func (s *Service) Settings(ctx context.Context, accountID string) (Settings, error) {
	var st Settings
	err := s.db.Reader().QueryRow(ctx, `SELECT display_name, logo_url, primary_color FROM portal_settings
		WHERE account_id = $1`, accountID).Scan(&st.DisplayName, &st.LogoURL, &st.PrimaryColor)
	if errors.Is(err, store.ErrNotFound) {
		return Settings{}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("portal settings: %w", err)
	}
	return st, nil
}

// SetSettings replaces an account's portal settings.
func (s *Service) SetSettings(ctx context.Context, accountID string, actor Actor, st Settings) error {
	if err := st.Validate(); err != nil {
		return err
	}
	st.PrimaryColor = strings.ToLower(st.PrimaryColor)
	return s.db.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO portal_settings (account_id, display_name, logo_url, primary_color, updated_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO UPDATE SET display_name = excluded.display_name,
			logo_url = excluded.logo_url, primary_color = excluded.primary_color, updated_at = excluded.updated_at`,
			accountID, st.DisplayName, st.LogoURL, st.PrimaryColor, store.Micros(s.now()))
		if err != nil {
			return fmt.Errorf("store portal settings: %w", err)
		}
		_, err = s.audit.AppendTx(ctx, tx, auditEvent(accountID, actor, "portal.settings_changed", "portal_settings", "success", nil))
		return err
	})
}

// brand is what pages and notices show of an account.
type brand struct {
	Name  string
	Logo  template.URL // validated data: URL, or ""
	Color string       // validated #rrggbb
}

func (s *Service) branding(ctx context.Context, accountID string) (brand, error) {
	st, err := s.Settings(ctx, accountID)
	if err != nil {
		return brand{}, err
	}
	b := brand{Name: st.DisplayName, Color: DefaultColor}
	if b.Name == "" {
		if b.Name, err = s.opts.AccountName(ctx, accountID); err != nil {
			return brand{}, err
		}
	}
	if b.Name == "" {
		b.Name = "Sealpost"
	}
	if colorPattern.MatchString(st.PrimaryColor) {
		b.Color = st.PrimaryColor
	}
	if logoPattern.MatchString(st.LogoURL) {
		b.Logo = template.URL(st.LogoURL) //nolint:gosec // validated: a base64 image data URL, never script
	}
	return b, nil
}

// codeSecretName names the one-time-code HMAC key in platform_secrets.
const codeSecretName = "portal-code-hmac"

// codeKey returns the HMAC key one-time codes are hashed with: random,
// shared by every node, sealed by the master key. Codes have few digits,
// so a plain hash would fall to a dictionary of a million entries; keyed,
// a copy of the database alone does not reveal a live code.
func codeKey(ctx context.Context, db *store.Store, master vault.MasterKey) ([]byte, error) {
	return vault.PlatformSecret(ctx, db, master, codeSecretName)
}
