//go:build !linux

package fbdev

import (
	"errors"
	"os"
)

func readGeometry(*os.File) (Geometry, error) {
	return Geometry{}, errors.New("the fbdev ioctls need Linux")
}
