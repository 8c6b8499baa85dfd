package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The readers every query of the package shares: one row, every row, or
// counts by a key. Each returns the driver's error as it is; the caller
// adds what it was reading.

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// eachRow runs a query and calls fn on every row; rows are closed when
// it returns.
func eachRow(ctx context.Context, q querier, fn func(*sql.Rows) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// queryAll runs a query and reads every row with scan, in order.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := eachRow(ctx, q, func(rows *sql.Rows) error {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// countBy runs a "SELECT key, COUNT(*) … GROUP BY key" query.
func countBy(ctx context.Context, q querier, query string, args ...any) (map[string]int, error) {
	out := map[string]int{}
	err := eachRow(ctx, q, func(rows *sql.Rows) error {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		out[k] = n
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// found turns sql.ErrNoRows into ErrNotFound.
func found[T any](v T, err error) (T, error) {
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, ErrNotFound
	}
	return v, err
}

// one is what a look-up of one row returns: v, ErrNotFound when there
// was no row, or the failure wrapped with what was looked up.
func one[T any](v T, err error, what string) (T, error) {
	var zero T
	if errors.Is(err, sql.ErrNoRows) {
		return zero, ErrNotFound
	}
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// scanString reads a one-column row.
func scanString(sc scanner) (string, error) {
	var v string
	err := sc.Scan(&v)
	return v, err
}
