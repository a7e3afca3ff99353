package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/state"
)

type greeterConfig struct {
	Greeting string `yaml:"greeting"`
}

func TestABuiltinReadsItsOwnSectionIntoTheTypeItDeclares(t *testing.T) {
	c := Catalog{{
		Name: "greeter", Frequency: state.PerBoot,
		Section: "greeter", Config: func() any { return new(greeterConfig) },
		Run: func(context.Context, *Boot) error { return nil },
	}}
	cfg, err := config.Parse("flint.yaml", []byte("greeter:\n  greeting: hello\n"), c.Sections())
	if err != nil {
		t.Fatal(err)
	}
	b := (&Boot{Config: cfg}).forHandler(c.Handlers()[0], &Result{}, nil)
	var got greeterConfig
	if err := b.Settings(&got); err != nil || got.Greeting != "hello" {
		t.Errorf("Settings = %+v, %v; want the greeter section", got, err)
	}
	var wrong struct{ Greeting string }
	if err := b.Settings(&wrong); err == nil || !strings.Contains(err.Error(), "declares *handlers.greeterConfig") {
		t.Errorf("Settings into another type: %v, want refused", err)
	}
	misspelt, err := config.Parse("flint.yaml", []byte("greeter:\n  greting: hello\n"), c.Sections())
	if err == nil {
		err = c.ValidateSections(misspelt)
	}
	if err == nil || !strings.Contains(err.Error(), "greting") {
		t.Errorf("a misspelt key in a handler's section: %v, want refused", err)
	}
	if _, err := config.Parse("flint.yaml", []byte("greter: {}\n"), c.Sections()); err == nil {
		t.Error("a section no handler owns was accepted")
	}
}
