package vault_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

func masterKeyValue(t *testing.T, raw []byte) []byte {
	t.Helper()
	var ks struct {
		Key []struct {
			KeyData struct {
				Value string `json:"value"`
			} `json:"keyData"`
		} `json:"key"`
	}
	if err := json.Unmarshal(raw, &ks); err != nil || len(ks.Key) != 1 {
		t.Fatalf("parse keyset file: %v", err)
	}
	b, err := base64.StdEncoding.DecodeString(ks.Key[0].KeyData.Value)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
