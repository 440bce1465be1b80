package templates_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/templates"
)

// accounts makes two accounts and returns their ids.
func accounts(t *testing.T, s *store.Store) (string, string) {
	t.Helper()
	ctx := context.Background()
	log := audit.New(s, audit.Options{})
	var ids [2]string
	for i, name := range []string{"Clinic", "Other"} {
		creds, _, err := account.Bootstrap(ctx, s, account.NewStore(s), log, account.BootstrapOptions{AccountName: name,
			OwnerEmail: "owner@" + name + ".example", Force: i > 0})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = creds.AccountID
	}
	return ids[0], ids[1]
}

func TestTemplateVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := accounts(t, s)
		clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		svc := templates.New(s, templates.Options{Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
		tpl, err := svc.Create(ctx, a, templates.NewTemplate{Name: "reminder",
			Content: templates.Content{Subject: "Hi {{.name}}", Text: "v1 {{.name}}"}})
		if err != nil {
			t.Fatal(err)
		}
		if tpl.ActiveVersion != 1 || tpl.LatestVersion != 1 || len(tpl.Versions) != 1 || tpl.MissingVariables != templates.MissingError {
			t.Fatalf("created %+v", tpl)
		}
		if _, err := svc.Create(ctx, a, templates.NewTemplate{Name: "reminder", Content: templates.Content{Text: "x"}}); !errors.Is(err, templates.ErrNameTaken) {
			t.Errorf("a second template of the same name: %v", err)
		}
		if _, err := svc.Create(ctx, b, templates.NewTemplate{Name: "reminder", Content: templates.Content{Text: "x"}}); err != nil {
			t.Errorf("another account may use the name: %v", err)
		}

		// A new version is not active until asked.
		tpl, err = svc.AddVersion(ctx, a, tpl.ID, templates.Content{Subject: "Hello {{.name}}", Text: "v2 {{.name}}"}, false)
		if err != nil || tpl.ActiveVersion != 1 || tpl.LatestVersion != 2 || len(tpl.Versions) != 2 || tpl.Versions[0].Version != 2 {
			t.Fatalf("add version: %+v, %v", tpl, err)
		}
		render := func(version int) string {
			t.Helper()
			out, err := svc.Render(ctx, a, tpl.ID, version, map[string]any{"name": "Ada"})
			if err != nil {
				t.Fatal(err)
			}
			return out.Text
		}
		if got := render(0); got != "v1 Ada" {
			t.Errorf("active version renders %q", got)
		}
		if got := render(2); got != "v2 Ada" {
			t.Errorf("version 2 renders %q", got)
		}
		if tpl, err = svc.Activate(ctx, a, tpl.ID, 2); err != nil || tpl.ActiveVersion != 2 {
			t.Fatalf("activate: %+v, %v", tpl, err)
		}
		if got := render(0); got != "v2 Ada" {
			t.Errorf("after activation the active version renders %q", got)
		}
		if _, err := svc.Activate(ctx, a, tpl.ID, 9); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("activating a version that does not exist: %v", err)
		}
		tpl, err = svc.AddVersion(ctx, a, tpl.ID, templates.Content{Text: "v3"}, true)
		if err != nil || tpl.ActiveVersion != 3 {
			t.Fatalf("add and activate: %+v, %v", tpl, err)
		}
		// An invalid version is refused and takes no number.
		if _, err := svc.AddVersion(ctx, a, tpl.ID, templates.Content{Text: "{{call .x}}"}, true); !errors.Is(err, templates.ErrSyntax) {
			t.Errorf("invalid version: %v", err)
		}
		if got, _ := svc.Get(ctx, a, tpl.ID); got.LatestVersion != 3 {
			t.Errorf("latest after a refused version: %d", got.LatestVersion)
		}

		// Tenant isolation: the other account sees nothing of it.
		if _, err := svc.Get(ctx, b, tpl.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get from another account: %v", err)
		}
		if _, err := svc.Render(ctx, b, tpl.ID, 0, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("render from another account: %v", err)
		}
		if _, err := svc.AddVersion(ctx, b, tpl.ID, templates.Content{Text: "x"}, true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("add a version from another account: %v", err)
		}
		if _, err := svc.Activate(ctx, b, tpl.ID, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("activate from another account: %v", err)
		}
		if err := svc.Delete(ctx, b, tpl.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete from another account: %v", err)
		}

		// Listing pages newest first.
		for _, n := range []string{"b", "c"} {
			if _, err := svc.Create(ctx, a, templates.NewTemplate{Name: n, MissingVariables: templates.MissingEmpty, Content: templates.Content{Text: n}}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := svc.List(ctx, a, 2, "")
		if err != nil || len(page.Templates) != 2 || page.Templates[0].Name != "c" || page.NextCursor == "" {
			t.Fatalf("first page: %+v, %v", page, err)
		}
		page, err = svc.List(ctx, a, 2, page.NextCursor)
		if err != nil || len(page.Templates) != 1 || page.Templates[0].Name != "reminder" || page.NextCursor != "" {
			t.Fatalf("second page: %+v, %v", page, err)
		}
		if _, err := svc.List(ctx, a, 2, "!!"); !errors.Is(err, templates.ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}

		if err := svc.Delete(ctx, a, tpl.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Render(ctx, a, tpl.ID, 0, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("render after delete: %v", err)
		}
	})
}
