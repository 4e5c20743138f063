package audioplay

/*
#include <audioplay.h>
*/
import "C"

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per ApStatus code. Every error this package returns for a failed
// library call is an *Error that unwraps to one of them, so callers test with errors.Is:
//
//	if errors.Is(err, audioplay.ErrClosed) { ... }
//
// Context cancellation is not one of them: Write and Drain return ctx.Err() itself.
var (
	ErrNull           = errors.New("audioplay: a required pointer was NULL")             // AP_ERR_NULL
	ErrInvalidArg     = errors.New("audioplay: invalid argument")                        // AP_ERR_INVALID_ARG
	ErrStructSize     = errors.New("audioplay: struct size mismatch")                    // AP_ERR_STRUCT_SIZE
	ErrBadHandle      = errors.New("audioplay: not a live player handle")                // AP_ERR_BAD_HANDLE
	ErrNoDevice       = errors.New("audioplay: no output device")                        // AP_ERR_NO_DEVICE
	ErrDevice         = errors.New("audioplay: the output device failed")                // AP_ERR_DEVICE
	ErrTimeout        = errors.New("audioplay: timed out")                               // AP_ERR_TIMEOUT
	ErrClosed         = errors.New("audioplay: player closed")                           // AP_ERR_CLOSED, and any call after Close
	ErrPanic          = errors.New("audioplay: internal error in the library")           // AP_ERR_PANIC
	ErrBufferTooSmall = errors.New("audioplay: buffer too small")                        // AP_ERR_BUFFER_TOO_SMALL
	ErrNoOutput       = errors.New("audioplay: no audio output (server or device gone)") // AP_ERR_NO_OUTPUT
)

var sentinels = map[int]error{
	int(C.AP_ERR_NULL):             ErrNull,
	int(C.AP_ERR_INVALID_ARG):      ErrInvalidArg,
	int(C.AP_ERR_STRUCT_SIZE):      ErrStructSize,
	int(C.AP_ERR_BAD_HANDLE):       ErrBadHandle,
	int(C.AP_ERR_NO_DEVICE):        ErrNoDevice,
	int(C.AP_ERR_DEVICE):           ErrDevice,
	int(C.AP_ERR_TIMEOUT):          ErrTimeout,
	int(C.AP_ERR_CLOSED):           ErrClosed,
	int(C.AP_ERR_PANIC):            ErrPanic,
	int(C.AP_ERR_BUFFER_TOO_SMALL): ErrBufferTooSmall,
	int(C.AP_ERR_NO_OUTPUT):        ErrNoOutput,
}

// Error is a failed call. Code is the library's ApStatus (negative); Reason is why, in the
// library's words (from ap_create_ex or ap_last_error) or, for arguments rejected before
// reaching the library, this package's.
type Error struct {
	Op     string // the call that failed: "create", "write", "set_volume", ...
	Code   int    // ApStatus: -2 for AP_ERR_INVALID_ARG, ...
	Reason string // may be empty
}

func (e *Error) Error() string {
	s := fmt.Sprintf("audioplay: %s: %s", e.Op, C.GoString(C.ap_strerror(C.int32_t(e.Code))))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the sentinel for Code (ErrInvalidArg, ErrClosed, ...).
func (e *Error) Unwrap() error { return sentinels[e.Code] }

// invalid is an argument this package rejects before calling the library.
func invalid(op, format string, args ...interface{}) error {
	return &Error{Op: op, Code: int(C.AP_ERR_INVALID_ARG), Reason: fmt.Sprintf(format, args...)}
}

func closedErr(op string) error {
	return &Error{Op: op, Code: int(C.AP_ERR_CLOSED), Reason: "the player was closed"}
}
