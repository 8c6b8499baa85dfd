package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// cmdBroker runs an embedded MQTT broker for labs and demos. It allows
// every client: production uses a real broker with per-device ACLs
// (README: "Broker").
func cmdBroker(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("broker", "[--listen ADDR]",
		"Run an embedded MQTT broker for labs and demos. It lets every client in:\nproduction runs mosquitto with the broker profile of build/mosquitto/.")
	addr := fs.String("listen", "127.0.0.1:1883", "TCP address to listen on")
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		fmt.Fprintf(stderr, "hqctl broker: %v\n", err)
		return 1
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})
	if err := srv.AddListener(ln); err != nil {
		fmt.Fprintf(stderr, "hqctl broker: listen %s: %v\n", *addr, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// Serve starts the listeners in the background and returns.
	if err := srv.Serve(); err != nil {
		fmt.Fprintf(stderr, "hqctl broker: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "lab broker listening on %s\n", ln.Address())
	<-sigs
	_ = srv.Close()
	return 0
}
