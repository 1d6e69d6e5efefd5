package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
)

// --env-from against Passbolt (folders) and PassAgent (tags): names that
// need sanitising, nested folders, collisions, an empty selection and an
// entry added between refreshes, as for Passwork in bulk_test.go.
func TestEnvFromPassboltAndPassAgent(t *testing.T) {
	pb, err := passbolttest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pb.Close)
	pa, err := passagenttest.New(passagenttest.Options{KDF: passagenttest.FastKDF(), CRUDLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pa.Close)
	entry := func(path, pw, tags string) fetchtest.Entry {
		return fetchtest.Entry{Path: path, Fields: map[string]string{"password": bulkCanary + pw, "tags": tags}}
	}
	if err := pb.Seed([]fetchtest.Entry{
		entry("infra/ci/deploy-key", "-dk", ""), entry("infra/ci/nested/npm.token", "-npm", ""),
		entry("infra/clash/a-b", "-1", ""), entry("infra/clash/a.b", "-2", ""), entry("infra/empty/only/x", "-x", ""),
	}); err != nil {
		t.Fatal(err)
	}
	if err := pa.Seed([]fetchtest.Entry{
		entry("Stripe live", "-sk", "prod"), entry("db@prod", "-db", "prod"), entry("laptop", "-l", "home"),
		entry("x-y", "-1", "clash"), entry("X_Y", "-2", "clash"),
	}); err != nil {
		t.Fatal(err)
	}
	opt := fetch.Options{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxRetryAfter: time.Second}
	providers := Providers(&ProviderConfig{Passbolt: pb.Config(), PassAgent: pa.Config()}, opt, nil)
	newPipeline := func(from ...string) *Pipeline {
		p, problems := New(Config{EnvFrom: from, Delims: delims, Providers: providers})
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		return p
	}

	out, err := newPipeline("passbolt:infra/ci/**", "passagent:tag:prod").Refresh(context.Background())
	want := []string{"DB_PROD=" + bulkCanary + "-db", "DEPLOY_KEY=" + bulkCanary + "-dk", "NPM_TOKEN=" + bulkCanary + "-npm", "STRIPE_LIVE=" + bulkCanary + "-sk"}
	if err != nil || !slices.Equal(out.Env, want) {
		t.Fatalf("env %q, %v; want %q", out.Env, err, want)
	}

	refreshErr(t, newPipeline("passbolt:infra/clash"), `A_B from passbolt:infra/clash entry "infra/clash/a.b" collides with passbolt:infra/clash entry "infra/clash/a-b"`)
	refreshErr(t, newPipeline("passagent:tag:clash"), `X_Y from passagent:tag:clash entry "x-y" collides with passagent:tag:clash entry "X_Y"`)
	refreshErr(t, newPipeline("passbolt:infra/empty"), "--env-from passbolt:infra/empty: no entries found directly in it (infra/empty/** includes its subfolders)")
	refreshErr(t, newPipeline("passagent:tag:nobody"), "--env-from passagent:tag:nobody: no entries found")
	refreshErr(t, newPipeline("passagent:prod"), "PassAgent has no folders")

	p := newPipeline("passbolt:infra/ci", "passagent:tag:home")
	first, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Seed([]fetchtest.Entry{entry("infra/ci/new key", "-new", "")}); err != nil {
		t.Fatal(err)
	}
	if err := pa.Seed([]fetchtest.Entry{entry("desktop", "-d", "home")}); err != nil {
		t.Fatal(err)
	}
	second, err := p.Refresh(context.Background())
	if err != nil || !second.EnvChanged || !slices.Equal(second.BulkKeys, []string{"DEPLOY_KEY", "DESKTOP", "LAPTOP", "NEW_KEY"}) {
		t.Errorf("after adding entries: %v → %+v, %v", first.BulkKeys, second, err)
	}
}
