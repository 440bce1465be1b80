package wkd_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/keys"
	"github.com/sealpost/sealpost/internal/keys/keystest"
	"github.com/sealpost/sealpost/internal/secureline"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
	"github.com/sealpost/sealpost/internal/wkd/wkdtest"
)

func TestFinder(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	uploaded := keystest.PGPEntity(t, patient, keystest.PGPSpec{})
	tests := []struct {
		name     string
		enableA  bool // account a enables WKD
		enableB  bool
		upload   bool // account a uploaded a key for patient
		status   int  // the directory answers every request with it
		wantFpr  string
		source   secureline.KeySource
		requests int
	}{
		{name: "an account that did not enable WKD never asks the directory", requests: 0},
		{name: "another account's choice does not apply", enableB: true, requests: 0},
		{name: "an enabled account gets the directory's key", enableA: true, wantFpr: k.joe, source: secureline.KeyWKD, requests: 1},
		{name: "an uploaded key comes first and the directory is not asked", enableA: true, upload: true,
			wantFpr: strings.ToUpper(uploaded.PrimaryKey.KeyIdString()), source: secureline.KeyUploaded, requests: 0},
		{name: "a directory that fails is no key, not an error", enableA: true, status: http.StatusBadGateway, requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				d := newDirectory(t)
				d.https.Publish(wkdtest.Advanced, patient, k.joeBin)
				d.https.SetStatus(tt.status)
				w := newTenants(t, s, d.client())
				if tt.enableA {
					w.enable(t, w.a)
				}
				if tt.enableB {
					w.enable(t, w.b)
				}
				if tt.upload {
					if _, err := w.keys.UploadPGP(ctx, w.a, keys.Upload{Address: patient, PublicKey: string(keystest.ArmorPublic(t, uploaded))}); err != nil {
						t.Fatal(err)
					}
				}
				key, source, err := w.finder.RecipientPGPSource(ctx, w.a.Principal.AccountID, patient)
				if err != nil {
					t.Fatalf("RecipientPGPSource: %v", err)
				}
				switch {
				case tt.wantFpr == "" && key != nil:
					t.Fatalf("got key %s, want none", key.Fingerprint)
				case tt.wantFpr != "" && (key == nil || !strings.HasSuffix(key.Fingerprint, tt.wantFpr) || source != tt.source):
					t.Fatalf("got key %v from %q, want %s from %q", key, source, tt.wantFpr, tt.source)
				}
				if n := len(d.https.Requests()); n != tt.requests {
					t.Errorf("the directory was asked %d times, want %d", n, tt.requests)
				}
				if _, ok := w.row(t, w.a, patient); ok != (tt.requests > 0) {
					t.Errorf("cache entry stored: %v, want %v", ok, tt.requests > 0)
				}
			})
		})
	}
}

func TestSecureLineDecidesPGPForADirectoryKeyAndSaysSo(t *testing.T) {
	t.Parallel()
	k := gpgKeys(t)
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := newDirectory(t)
		d.https.Publish(wkdtest.Advanced, patient, k.joeBin)
		w := newTenants(t, s, d.client())
		w.enable(t, w.a)
		sl := secureline.New(s, secureline.Options{Keys: w.finder})
		res, err := sl.Preflight(ctx, w.a.Principal.AccountID, secureline.PreflightRequest{From: "noreply@clinic.example",
			Recipients: []secureline.Recipient{{Address: patient, Domain: "patient.example"}}, ContainsPHI: new(true)})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Recipients[0]
		if r.Method != secureline.MethodPGP || !strings.Contains(strings.Join(r.Reasons, "; "), "Web Key Directory") {
			t.Fatalf("decision %s: %v", r.Method, r.Reasons)
		}
	})
}
