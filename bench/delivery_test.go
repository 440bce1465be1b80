package bench

import (
	"context"
	"testing"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
	"github.com/sealpost/sealpost/internal/store/storetest"
)

func TestDeliveryDeliversEveryMessage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := queue.Migrate(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
		rep, err := Delivery(ctx, s, DeliveryConfig{Messages: 300, Domains: 3, Batch: 100}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.EndToEnd.Ops != 300 || rep.Accept.Elapsed <= 0 || rep.P50 <= 0 || rep.P99 < rep.P50 || rep.CPUPer1000 <= 0 {
			t.Fatalf("report %+v", rep)
		}
	})
}
