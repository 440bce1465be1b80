package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"

	"github.com/sealpost/sealpost/internal/queue"
	"github.com/sealpost/sealpost/internal/store"
)

// ReminderArgs is a job: send the reminder of one appointment. It holds
// the appointment's id, never the patient's data.
type ReminderArgs struct {
	AppointmentID string `json:"appointment_id"`
}

// Kind names the job in the river_job table.
func (ReminderArgs) Kind() string { return "appointment_reminder" }

// A reminder job is inserted in the transaction that books the
// appointment, so both exist or neither does, and a worker then sends it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sealpost-queue-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "sealpost.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, store.MigrateOptions{}); err != nil {
		panic(err)
	}
	if err := queue.Migrate(ctx, s, nil); err != nil {
		panic(err)
	}

	q, err := queue.New(s, queue.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	sent := make(chan struct{})
	err = queue.AddWorker(q, river.WorkFunc(func(ctx context.Context, job *river.Job[ReminderArgs]) error {
		fmt.Println("reminder sent for", job.Args.AppointmentID)
		close(sent)
		return nil
	}))
	if err != nil {
		panic(err)
	}
	if err := q.Start(ctx); err != nil {
		panic(err)
	}

	err = s.InTx(ctx, func(tx store.Tx) error {
		// ... insert the appointment's rows with tx ...
		_, err := q.InsertTx(ctx, tx, ReminderArgs{AppointmentID: "apt-42"}, &queue.InsertOpts{Queue: queue.QueueDelivery})
		return err
	})
	if err != nil {
		panic(err)
	}

	<-sent
	if err := q.Stop(ctx); err != nil {
		panic(err)
	}
	// Output: reminder sent for apt-42
}
