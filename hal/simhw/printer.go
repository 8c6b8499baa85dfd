package simhw

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/escpos"
)

// ReceiptSeparator ends every receipt in the printer file: a form feed on a
// line of its own, the paper cut of a text printer. Split the file on it to
// get the receipts back.
const ReceiptSeparator = "\f\n"

// FilePrinter is the simulator's printer: each receipt is appended to a file
// as its lines, one per line, followed by ReceiptSeparator, and fsynced
// before Print returns (the terminal treats a printed receipt as done).
// The text is in the printer's encoding ([hal] printer_encoding), as a
// real printer's font would read it: GB18030 for Chinese receipts, ASCII
// (anything else a '?') otherwise. It prints what it is given: masking
// PANs is the caller's job.
type FilePrinter struct {
	mu   sync.Mutex
	f    *os.File
	path string
	enc  escpos.Encoding
}

var _ hal.Printer = (*FilePrinter)(nil)

// OpenFilePrinter opens (creating, mode 0600: receipts are merchant data)
// the file at path for appending receipts in encoding enc.
func OpenFilePrinter(path string, enc escpos.Encoding) (*FilePrinter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open printer file: %w", err)
	}
	return &FilePrinter{f: f, path: path, enc: enc}, nil
}

// Print appends r in one write and fsyncs.
func (p *FilePrinter) Print(r hal.Receipt) error {
	var b bytes.Buffer
	for _, l := range r.Lines {
		b.Write(escpos.EncodeText(l, p.enc))
		b.WriteByte('\n')
	}
	b.WriteString(ReceiptSeparator)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return fmt.Errorf("print receipt to %s: printer closed", p.path)
	}
	if _, err := p.f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("print receipt to %s: %w", p.path, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("print receipt to %s: fsync: %w", p.path, err)
	}
	return nil
}

// Close closes the file.
func (p *FilePrinter) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}
