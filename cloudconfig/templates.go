package cloudconfig

import (
	"embed"
	"fmt"

	"github.com/flint-dev/flint/userdata"
)

//go:embed templates/*.tmpl
var templates embed.FS

// renderTemplate renders one of cloud-init's templates with params as its
// jinja variables.
func renderTemplate(name string, params map[string]any) ([]byte, error) {
	src, err := templates.ReadFile("templates/" + name + ".tmpl")
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	out, err := userdata.RenderJinja(src, params)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return out, nil
}

func renderJinjaString(src string, params map[string]any) ([]byte, error) {
	return userdata.RenderJinja([]byte(src), params)
}
