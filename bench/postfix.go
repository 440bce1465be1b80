package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PostfixConfig enables figure (b): the same message set through a
// private Postfix instance (own config and queue directories under the
// run directory, listening on loopback only, never port 25, never
// /etc/postfix) with OpenDKIM as a milter, to the same sink.
type PostfixConfig struct {
	// AlsoWithoutDKIM adds a run without the milter (the reference point).
	AlsoWithoutDKIM bool
}

// PostfixAvailable says whether postfix and opendkim can be run, and
// if not what is missing.
func PostfixAvailable() error {
	var missing []string
	for _, bin := range []string{"postfix", "postconf", "opendkim"} {
		if _, err := lookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not installed (Debian: apt-get install postfix opendkim opendkim-tools)", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return errors.New("a private Postfix instance needs root (its daemons drop to the postfix user)")
	}
	return nil
}

// lookPath finds bin in PATH or the sbin directories Debian puts MTAs in.
func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// postfixInstance is a running private Postfix (and its OpenDKIM).
type postfixInstance struct {
	dir      string // config_directory
	queueDir string
	smtpAddr string    // the smtpd listener
	opendkim []*daemon // the RSA and the Ed25519 signer
	postfix  string    // the postfix command
}

// masterPID reads the master daemon's pid file.
func (p *postfixInstance) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.queueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// cpu is the CPU of the master and every daemon it ran (reaped ones
// included), plus OpenDKIM's.
func (p *postfixInstance) cpu() time.Duration {
	roots := []int{p.masterPID()}
	for _, c := range p.opendkim {
		roots = append(roots, c.cmd.Process.Pid)
	}
	return TreeCPU(roots...)
}

// stop stops Postfix and OpenDKIM.
func (p *postfixInstance) stop() error {
	var errs []error
	if out, err := exec.Command(p.postfix, "-c", p.dir, "stop").CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("postfix stop: %w: %s", err, out))
	}
	for _, c := range p.opendkim {
		c.stop()
	}
	// The master exits after its children; wait so the next instance
	// can bind.
	for i := 0; i < 100 && p.masterPID() != 0 && processAlive(p.masterPID()); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// freePort returns a loopback port free at the time of asking.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startPostfix writes a private instance under dir and starts it: smtpd
// on a free loopback port, each destination domain routed by
// transport_maps to its sink listener, TLS mandatory to the sink
// (smtp_tls_security_level=encrypt) with the sink's CA, and with dkim
// OpenDKIM signing every message with RSA-2048 and Ed25519.
func (w *world) startPostfix(dir string, dkim bool) (*postfixInstance, error) {
	postfixCmd, err := lookPath("postfix")
	if err != nil {
		return nil, err
	}
	p := &postfixInstance{dir: filepath.Join(dir, "etc"), queueDir: filepath.Join(dir, "queue"), postfix: postfixCmd}
	for _, d := range []string{p.dir, p.queueDir, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := chownToPostfix(filepath.Join(dir, "data")); err != nil {
		return nil, err
	}
	smtpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p.smtpAddr = "127.0.0.1:" + strconv.Itoa(smtpPort)
	var transport strings.Builder
	for d := range w.cfg.Domains {
		fmt.Fprintf(&transport, "d%d.example smtp:[127.0.0.1]:%d\n", d, w.sink.Port(d))
	}
	// Bounces to the sender go to a sink listener too (counted apart).
	fmt.Fprintf(&transport, "clinic.example smtp:[127.0.0.1]:%d\n", w.sink.Port(0))
	if err := os.WriteFile(filepath.Join(p.dir, "transport"), []byte(transport.String()), 0o644); err != nil {
		return nil, err
	}
	if err := copyFile(w.caFile, filepath.Join(p.dir, "sink-ca.pem")); err != nil {
		return nil, err
	}
	milter := ""
	if dkim {
		// OpenDKIM 2.11 has one signature algorithm per instance, so
		// two milters in a row sign: RSA-2048 first, then Ed25519.
		var milters []string
		for _, alg := range []string{"rsa-sha256", "ed25519-sha256"} {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			c, err := startOpenDKIM(filepath.Join(dir, "opendkim-"+alg), port, alg)
			if err != nil {
				_ = p.stop()
				return nil, err
			}
			p.opendkim = append(p.opendkim, c)
			milters = append(milters, "inet:127.0.0.1:"+strconv.Itoa(port))
		}
		milter = strings.Join(milters, ", ")
	}
	mainCF := postfixMainCF(dir, p.dir, p.queueDir, milter)
	if err := os.WriteFile(filepath.Join(p.dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.dir, "master.cf"), []byte(postfixMasterCF(p.smtpAddr)), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(postfixCmd, "-c", p.dir, "start").CombinedOutput(); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("postfix -c %s start: %w: %s", p.dir, err, out)
	}
	// Wait for smtpd to answer.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", p.smtpAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			_ = p.stop()
			return nil, fmt.Errorf("postfix smtpd not listening on %s (log: %s)", p.smtpAddr, filepath.Join(dir, "postfix.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, nil
}

// postfixMainCF is the private instance's main.cf: Debian's defaults
// otherwise (process and concurrency limits included), local delivery
// off, retries after a minute (as Sealpost's first backoff).
func postfixMainCF(dir, confDir, queueDir, milter string) string {
	lines := []string{
		"compatibility_level = 3.6",
		"config_directory = " + confDir,
		"queue_directory = " + queueDir,
		"data_directory = " + filepath.Join(dir, "data"),
		"maillog_file = " + filepath.Join(dir, "postfix.log"),
		"maillog_file_prefixes = " + dir,
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = mta.clinic.example",
		"mydomain = clinic.example",
		"myorigin = clinic.example",
		"mydestination =",
		"local_transport = error:local delivery is disabled",
		"alias_maps =",
		"alias_database =",
		"local_recipient_maps =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"transport_maps = texthash:" + filepath.Join(confDir, "transport"),
		"smtp_tls_security_level = encrypt",
		"smtp_tls_CAfile = " + filepath.Join(confDir, "sink-ca.pem"),
		"smtp_tls_loglevel = 0",
		"smtpd_tls_security_level = none",
		"minimal_backoff_time = 60s",
		"maximal_backoff_time = 120s",
		"queue_run_delay = 30s",
		"message_size_limit = 10485760",
	}
	if milter != "" {
		lines = append(lines,
			"smtpd_milters = "+milter,
			"non_smtpd_milters = "+milter,
			"milter_default_action = tempfail",
			"milter_protocol = 6")
	}
	return strings.Join(lines, "\n") + "\n"
}

// postfixMasterCF is Debian's master.cf with chroot off everywhere (the
// queue lives in the run directory) and smtpd on addr only.
func postfixMasterCF(addr string) string {
	return addr + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
}

// startOpenDKIM writes a fresh key and a configuration signing mail
// from clinic.example with alg (rsa-sha256 with RSA-2048, RFC 6376 §3.3;
// or ed25519-sha256, RFC 8463), and runs opendkim in the foreground as a
// milter on port.
func startOpenDKIM(dir string, port int, alg string) (*daemon, error) {
	bin, err := lookPath("opendkim")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyPEM, selector, err := dkimKey(alg)
	if err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"Mode s",
		"Canonicalization relaxed/relaxed",
		"Socket inet:" + strconv.Itoa(port) + "@127.0.0.1",
		"PidFile " + filepath.Join(dir, "opendkim.pid"),
		"Domain clinic.example",
		"Selector " + selector,
		"KeyFile " + filepath.Join(dir, "key.pem"),
		"SignatureAlgorithm " + alg,
		"InternalHosts 127.0.0.1",
		"Syslog no",
		// The key is throwaway and lives under /tmp, which opendkim
		// would call unsafe (a world-writable ancestor).
		"RequireSafeKeys no",
	}, "\n") + "\n"
	for name, b := range map[string][]byte{"key.pem": keyPEM, "opendkim.conf": []byte(conf)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(filepath.Join(dir, "opendkim.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-f", "-x", filepath.Join(dir, "opendkim.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start opendkim: %w", err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(d.exited) }()
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		if i > 50 {
			_ = cmd.Process.Kill()
			b, _ := os.ReadFile(filepath.Join(dir, "opendkim.log"))
			return nil, fmt.Errorf("opendkim (%s) not listening on %d: %s", alg, port, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// daemon is a child process the harness started and waits for.
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// stop asks the daemon to finish and waits for it (killing it after
// 10 s).
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// dkimKey makes a fresh private key for alg in PEM and its selector.
func dkimKey(alg string) ([]byte, string, error) {
	if alg == "ed25519-sha256" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, "", err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "ed", nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), "rsa", nil
}

// chownToPostfix gives dir to the postfix user (data_directory must be
// owned by mail_owner).
func chownToPostfix(dir string) error {
	u, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("postfix user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// postfixEndToEnd is figure (b): the message set submitted over SMTP by
// Concurrency clients to a fresh private Postfix, delivered to the sink.
func (w *world) postfixEndToEnd(ctx context.Context, dkim bool) (Figure, error) {
	target := "postfix+opendkim"
	if !dkim {
		target = "postfix (no DKIM)"
	}
	name := "(b) " + target
	// Postfix's daemons run as the postfix user and must reach their
	// directories: a world-traversable directory of its own under /tmp,
	// removed when the run succeeds (kept for its log when it fails).
	dir, err := os.MkdirTemp("", "sealpost-bench-postfix-")
	if err != nil {
		return Figure{}, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return Figure{}, err
	}
	w.cfg.Log("%s: starting a private instance in %s", name, dir)
	pf, err := w.startPostfix(dir, dkim)
	if err != nil {
		return Figure{}, err
	}
	ok := false
	defer func() {
		if err := pf.stop(); err != nil {
			w.cfg.Log("%s: %v", name, err)
		}
		if ok {
			_ = os.RemoveAll(dir)
		}
	}()
	w.sink.Reset()
	n := w.cfg.Messages
	acc := newAccepted(n)
	cpu0 := pf.cpu()
	start := time.Now()
	s := smtpSubmitter{addr: pf.smtpAddr}
	if err := s.submit(ctx, n, w.cfg.Concurrency, w.cfg.Domains, w.body, acc, throttled(name+" accepted", n, w.progress)); err != nil {
		return Figure{}, err
	}
	state, cpu1, err := w.awaitFirstAttempts(ctx, name, n, pf.cpu)
	if err != nil {
		return Figure{}, fmt.Errorf("%w (log: %s)", err, filepath.Join(dir, "postfix.log"))
	}
	f := w.endToEnd("b", target, n, start, acc, state, cpu1-cpu0)
	retry, err := w.awaitRetries(ctx, name, n, state)
	if err != nil {
		return f, err
	}
	if retry != "" {
		f.Notes += "; " + retry
	}
	w.cfg.Log("%s: %.0f msg/s", name, f.PerSecond())
	ok = true
	return f, nil
}
