package fbdev

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// linux/fb.h ioctls.
const (
	fbiogetVScreenInfo = 0x4600
	fbiogetFScreenInfo = 0x4602
)

type fbBitfield struct {
	Offset, Length, MsbRight uint32
}

// fbVarScreenInfo is struct fb_var_screeninfo (160 bytes on every ABI).
type fbVarScreenInfo struct {
	XRes, YRes, XResVirtual, YResVirtual uint32
	XOffset, YOffset                     uint32
	BitsPerPixel, Grayscale              uint32
	Red, Green, Blue, Transp             fbBitfield
	Nonstd, Activate, Height, Width      uint32
	AccelFlags, Pixclock                 uint32
	LeftMargin, RightMargin              uint32
	UpperMargin, LowerMargin             uint32
	HsyncLen, VsyncLen, Sync, Vmode      uint32
	Rotate, Colorspace                   uint32
	Reserved                             [4]uint32
}

// fbFixScreenInfo is struct fb_fix_screeninfo: its two unsigned longs
// are uintptr, so the layout matches the C one on 32- and 64-bit ABIs.
type fbFixScreenInfo struct {
	ID                            [16]byte
	SmemStart                     uintptr
	SmemLen, Type, TypeAux        uint32
	Visual                        uint32
	XPanStep, YPanStep, YWrapStep uint16
	LineLength                    uint32
	MmioStart                     uintptr
	MmioLen, Accel                uint32
	Capabilities                  uint16
	Reserved                      [2]uint16
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	}); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func readGeometry(f *os.File) (Geometry, error) {
	var v fbVarScreenInfo
	if err := ioctl(f, fbiogetVScreenInfo, unsafe.Pointer(&v)); err != nil {
		return Geometry{}, fmt.Errorf("FBIOGET_VSCREENINFO: %w (not a framebuffer device?)", err)
	}
	var x fbFixScreenInfo
	if err := ioctl(f, fbiogetFScreenInfo, unsafe.Pointer(&x)); err != nil {
		return Geometry{}, fmt.Errorf("FBIOGET_FSCREENINFO: %w", err)
	}
	return geometryOf(v, x), nil
}

func geometryOf(v fbVarScreenInfo, x fbFixScreenInfo) Geometry {
	bf := func(b fbBitfield) Bitfield { return Bitfield{Offset: b.Offset, Length: b.Length} }
	return Geometry{
		Width: int(v.XRes), Height: int(v.YRes),
		XOffset: int(v.XOffset), YOffset: int(v.YOffset),
		BitsPerPixel: int(v.BitsPerPixel),
		LineLength:   int(x.LineLength),
		Type:         x.Type, Visual: x.Visual,
		Red: bf(v.Red), Green: bf(v.Green), Blue: bf(v.Blue),
	}
}
