// Command otelcol-mlmon is a slim OpenTelemetry Collector with exactly the components that
// collector/otelcol-config.yaml uses: the same release as the pinned contrib image, so a config
// that this binary validates also runs in the bundled docker-compose stack. It doubles as a
// minimal production collector (see docs/stack.md).
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is the collector release every component module is pinned to (see go.mod).
const version = "0.165.0-mlmon"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol-mlmon",
		Description: "otel-mlmon slim OpenTelemetry Collector",
		Version:     version,
	}
	settings := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				// ${VAR} and ${env:VAR} both read the environment, as in the contrib image.
				DefaultScheme: "env",
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
}
