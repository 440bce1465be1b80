package queue

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/sealpost/sealpost/internal/store"
)

// engine is the River client with its transaction type hidden: River's
// client is generic over the driver's transaction (*sql.Tx for SQLite,
// pgx.Tx for PostgreSQL), callers of this package only see store.Tx.
type engine interface {
	insert(ctx context.Context, args river.JobArgs, opts *InsertOpts) (*rivertype.JobInsertResult, error)
	insertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *InsertOpts) (*rivertype.JobInsertResult, error)
	insertMany(ctx context.Context, params []InsertManyParams) ([]*rivertype.JobInsertResult, error)
	insertManyTx(ctx context.Context, tx store.Tx, params []InsertManyParams) ([]*rivertype.JobInsertResult, error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	stopAndCancel(ctx context.Context) error
	stopped() <-chan struct{}
	subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// newEngine builds the River client for s's dialect.
func newEngine(s *store.Store, cfg *river.Config) (engine, error) {
	switch s.Dialect() {
	case store.SQLite:
		return newRiverEngine[*sql.Tx](riversqlite.New(s.SQLiteDB()), store.SQLite, cfg)
	case store.Postgres:
		return newRiverEngine[pgx.Tx](riverpgxv5.New(s.PgxPool()), store.Postgres, cfg)
	default:
		return nil, fmt.Errorf("unsupported store dialect %q", s.Dialect())
	}
}

type riverEngine[TTx any] struct {
	client  *river.Client[TTx]
	dialect store.Dialect
}

func newRiverEngine[TTx any](driver riverdriver.Driver[TTx], d store.Dialect, cfg *river.Config) (*riverEngine[TTx], error) {
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, err
	}
	return &riverEngine[TTx]{client: client, dialect: d}, nil
}

// rawTx returns the driver transaction under tx.
func (e *riverEngine[TTx]) rawTx(tx store.Tx) (TTx, error) {
	raw, ok := tx.Raw().(TTx)
	if !ok {
		return raw, fmt.Errorf("queue: a %s transaction cannot carry jobs of this %s queue", tx.Dialect(), e.dialect)
	}
	return raw, nil
}

func (e *riverEngine[TTx]) insert(ctx context.Context, args river.JobArgs, opts *InsertOpts) (*rivertype.JobInsertResult, error) {
	return e.client.Insert(ctx, args, opts)
}

func (e *riverEngine[TTx]) insertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *InsertOpts) (*rivertype.JobInsertResult, error) {
	raw, err := e.rawTx(tx)
	if err != nil {
		return nil, err
	}
	return e.client.InsertTx(ctx, raw, args, opts)
}

func (e *riverEngine[TTx]) insertMany(ctx context.Context, params []InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	return e.client.InsertMany(ctx, params)
}

func (e *riverEngine[TTx]) insertManyTx(ctx context.Context, tx store.Tx, params []InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	raw, err := e.rawTx(tx)
	if err != nil {
		return nil, err
	}
	return e.client.InsertManyTx(ctx, raw, params)
}

func (e *riverEngine[TTx]) start(ctx context.Context) error { return e.client.Start(ctx) }

func (e *riverEngine[TTx]) stop(ctx context.Context) error { return e.client.Stop(ctx) }

func (e *riverEngine[TTx]) stopAndCancel(ctx context.Context) error {
	return e.client.StopAndCancel(ctx)
}

func (e *riverEngine[TTx]) stopped() <-chan struct{} { return e.client.Stopped() }

func (e *riverEngine[TTx]) subscribe(kinds ...river.EventKind) (<-chan *river.Event, func()) {
	return e.client.SubscribeConfig(&river.SubscribeConfig{Kinds: kinds, ChanSize: eventBuffer})
}
