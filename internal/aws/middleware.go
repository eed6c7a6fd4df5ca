package aws

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// TimeoutError is the cause of an operation cancelled by Options.Timeout.
// It matches context.DeadlineExceeded with errors.Is.
type TimeoutError struct{ After time.Duration }

func (e TimeoutError) Error() string {
	return fmt.Sprintf("AWS call did not complete within %s (--aws-timeout)", e.After)
}

// Is makes errors.Is(err, context.DeadlineExceeded) hold, as for any other
// deadline.
func (e TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout marks the error as a timeout for code that asks net.Error-style.
func (e TimeoutError) Timeout() bool { return true }

// addTimeout bounds each operation, retries and credential resolution
// included: it sits in the Initialize step, which wraps everything else.
//
// The timer is stopped, rather than the context cancelled, once the
// response is in when the output streams a body (S3 GetObject): cancelling
// then would cut the caller's read. That body's context ends when it is
// closed.
func addTimeout(d time.Duration) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("eksirTimeout", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			parent := ctx
			ctx, cancel := context.WithCancelCause(ctx)
			timer := time.AfterFunc(d, func() { cancel(TimeoutError{After: d}) })
			out, md, err := next.HandleInitialize(ctx, in)
			fired := !timer.Stop()
			if err != nil {
				if fired && parent.Err() == nil {
					err = fmt.Errorf("%w: %w", TimeoutError{After: d}, err)
				}
				cancel(nil)
				return out, md, err
			}
			if !wrapBody(out.Result, func() { cancel(nil) }) {
				cancel(nil)
			}
			return out, md, err
		}), middleware.Before)
	}
}

// wrapBody replaces a streaming Body field of an operation's output so
// that closing it calls release, and reports whether it did.
func wrapBody(result any, release func()) bool {
	v := reflect.ValueOf(result)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("Body")
	rcType := reflect.TypeFor[io.ReadCloser]()
	if !f.IsValid() || !f.CanSet() || f.Type() != rcType || f.IsNil() {
		return false
	}
	f.Set(reflect.ValueOf(io.ReadCloser(&releasingBody{ReadCloser: f.Interface().(io.ReadCloser), release: release})))
	return true
}

type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// testHook, when set (only by test builds, see SetTestHook), is called
// after every successful operation of every configuration Load builds
// afterwards.
var testHook func(ctx context.Context, service, operation string)

// SetTestHook installs f, called with the service ID ("EC2", "IAM", ...)
// and the operation name after each successful AWS operation of every
// configuration loaded afterwards. Only test builds call it (the
// crash-inside tests of package playbooks); call it from init.
func SetTestHook(f func(ctx context.Context, service, operation string)) { testHook = f }

func addTestHook(f func(ctx context.Context, service, operation string)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("eksirTestHook", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				f(ctx, awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx))
			}
			return out, md, err
		}), middleware.After)
	}
}
