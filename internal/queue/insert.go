package queue

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/store"
)

// InsertOpts overrides a job's defaults at insertion; nil keeps them. The
// fields most used here: Priority (1 runs first .. 4 last; default 1),
// ScheduledAt (not worked before then), Queue (default QueueDefault),
// MaxAttempts (default 25) and UniqueOpts (skip a duplicate job). It is
// River's own type.
type InsertOpts = river.InsertOpts

// InsertManyParams is one job of a batch: its args and optional options.
type InsertManyParams = river.InsertManyParams

// InsertResult describes an inserted job: its row, and whether a unique
// job was skipped because an equal one already exists.
type InsertResult = rivertype.JobInsertResult

// Insert inserts one job in a transaction of its own. A worker for the
// job's kind must be registered. On SQLite it needs the writer connection:
// never call it while holding a store transaction (use InsertTx).
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *InsertOpts) (*InsertResult, error) {
	eng, err := q.engine()
	if err != nil {
		return nil, err
	}
	res, err := eng.insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %s job: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertTx inserts one job in the caller's store transaction: the job
// exists exactly when the transaction commits, together with the rows it
// concerns, and is not worked before then.
func (q *Queue) InsertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *InsertOpts) (*InsertResult, error) {
	eng, err := q.engine()
	if err != nil {
		return nil, err
	}
	res, err := eng.insertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %s job: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertMany inserts a batch of jobs in one transaction of its own, all or
// none. The same caution as Insert applies on SQLite.
func (q *Queue) InsertMany(ctx context.Context, params []InsertManyParams) ([]*InsertResult, error) {
	if len(params) == 0 {
		return nil, nil
	}
	eng, err := q.engine()
	if err != nil {
		return nil, err
	}
	res, err := eng.insertMany(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %d jobs: %w", len(params), err)
	}
	return res, nil
}

// InsertManyTx inserts a batch of jobs in the caller's store transaction,
// so a group of accepted messages and their jobs commit together.
func (q *Queue) InsertManyTx(ctx context.Context, tx store.Tx, params []InsertManyParams) ([]*InsertResult, error) {
	if len(params) == 0 {
		return nil, nil
	}
	eng, err := q.engine()
	if err != nil {
		return nil, err
	}
	res, err := eng.insertManyTx(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %d jobs: %w", len(params), err)
	}
	return res, nil
}
