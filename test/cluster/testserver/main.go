// Command testserver is the one static binary in the cluster tests' image
// (kubevm/cluster-test). Subcommands:
//
//	hello                 print a greeting, then sleep (a Deployment's workload: logs, exec)
//	echo ARGS...          print ARGS (run through kubectl exec)
//	serve                 a minimal aggregated API server for group testing.kubevm.io/v1alpha1
//	kube-version          GET /version from the kube-apiserver through the kubernetes
//	                      Service, with the pod's ServiceAccount token (in-cluster path)
//	tcp-echo PORT         answer each line received on TCP PORT with "<peer IP> <line>"
//	                      (the peer IP shows whether the sender's address was translated)
//	tcp-send ADDR LINE    send LINE to a tcp-echo at ADDR (host:port), print its answer
//	ls DIR                print the names in DIR, one a line
//
// serve listens with TLS on :8443 (cert and key from /tls/tls.crt, /tls/tls.key)
// and, like a real extension apiserver, only accepts requests from the kube-apiserver's
// aggregator: a client certificate signed by the requestheader CA (/requestheader/ca.crt)
// and carrying an allowed name. It reports the X-Remote-User the aggregator forwarded.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	group   = "testing.kubevm.io"
	version = "v1alpha1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testserver hello|echo ARGS...|serve")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "hello":
		fmt.Println("hello from kubevm cluster-test")
		for {
			time.Sleep(time.Hour)
		}
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
	case "serve":
		serve()
	case "kube-version":
		exitOn(kubeVersion())
	case "tcp-echo":
		exitOn(tcpEcho(arg(2)))
	case "tcp-send":
		exitOn(tcpSend(arg(2), arg(3)))
	case "ls":
		entries, err := os.ReadDir(arg(2))
		exitOn(err)
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}

func arg(i int) string {
	if len(os.Args) <= i {
		fmt.Fprintf(os.Stderr, "%s: missing argument %d\n", os.Args[1], i-1)
		os.Exit(2)
	}
	return os.Args[i]
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func tcpEcho(port string) error {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	log.Printf("tcp-echo listening on :%s", port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			peer, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			log.Printf("tcp-echo: %q from %s", strings.TrimSpace(line), peer)
			_, _ = fmt.Fprintf(conn, "%s %s", peer, line)
		}()
	}
}

func tcpSend(addr, line string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\n", line); err != nil {
		return err
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	fmt.Print(answer)
	return nil
}

func serve() {
	caPEM, err := os.ReadFile("/requestheader/ca.crt")
	if err != nil {
		log.Fatalf("requestheader CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatal("requestheader CA: no certificate found")
	}
	allowed := strings.Split(envOr("ALLOWED_NAMES", "front-proxy-client"), ",")

	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/apis", func(w http.ResponseWriter, r *http.Request) {
		gv := map[string]string{"groupVersion": group + "/" + version, "version": version}
		writeJSON(w, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{
			map[string]any{"name": group, "versions": []any{gv}, "preferredVersion": gv},
		}})
	})
	mux.HandleFunc("/apis/"+group+"/"+version, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group + "/" + version,
			"resources": []any{map[string]any{"name": "whoamis", "singularName": "whoami", "namespaced": false,
				"kind": "WhoAmI", "verbs": []string{"get", "list"}}}})
	})
	// whoamis answers with the identity the aggregator forwarded.
	mux.HandleFunc("/apis/"+group+"/"+version+"/whoamis", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"kind": "WhoAmI", "apiVersion": group + "/" + version,
			"metadata": map[string]any{"name": "me"},
			"user":     r.Header.Get("X-Remote-User"), "groups": r.Header.Values("X-Remote-Group")})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

	// Requests must come from the aggregator (or be health checks).
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !fromAggregator(r, allowed) {
			http.Error(w, "client certificate is not the aggregator's", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Addr:    ":8443",
		Handler: handler,
		TLSConfig: &tls.Config{
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  pool,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving %s/%s on :8443", group, version)
	log.Fatal(srv.ListenAndServeTLS("/tls/tls.crt", "/tls/tls.key"))
}

func fromAggregator(r *http.Request, allowed []string) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return false
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	for _, a := range allowed {
		if cn == a {
			return true
		}
	}
	return false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// kubeVersion reaches the apiserver the way in-cluster clients do: the
// kubernetes Service address from the environment, kube-proxy's DNAT behind it.
func kubeVersion() error {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	token, err := os.ReadFile(sa + "/token")
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(sa + "/ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/version", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET https://%s/version: %s: %s", host, resp.Status, body)
	}
	fmt.Printf("%s\n", body)
	return nil
}
