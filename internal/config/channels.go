package config

import (
	"strconv"
	"time"
)

// channelName checks a channel's name, by default kind-index (the kind
// is the last key of t's path).
func (r *reader) channelName(t at, given string, names map[string]string) string {
	kind, index := t.path[len(t.path)-2], t.path[len(t.path)-1][1:]
	i, _ := strconv.Atoi(index)
	name := kind + "-" + strconv.Itoa(i+1)
	if t.has("name") {
		name = given
		if msg := checkName(name); msg != "" {
			t.errorf("name", "%s", msg)
			return name
		}
		switch name {
		case AllChannels, ChannelJournal, ChannelHooks:
			t.errorf("name", "%q is reserved", name)
			return name
		}
	}
	if other, dup := names[name]; dup {
		t.errorf("name", "channel name %q is already used by %s", name, other)
	} else {
		names[name] = shown(t.path)
	}
	return name
}

// headers checks a channel's inline headers.
func (r *reader) headers(t at, h map[string]string) map[string]string {
	if !t.has("headers") {
		return nil
	}
	ht := t.sub("headers")
	for _, k := range sortedKeys(h) {
		if msg := checkSetHeader(k); msg != "" {
			ht.errorf(k, "%s", msg)
			continue
		}
		ht.check(k, checkHeaderValue(h[k]))
	}
	if r.info != nil && r.info.mode&0o004 != 0 && len(h) > 0 {
		t.warnf("headers", "the configuration file is readable by every user (mode %04o), and so are these header values: chmod o-r the file, or give them with header_files or header_credentials",
			r.info.mode)
	}
	return h
}

// credentials checks that username and password come together.
func (r *reader) credentials(t at, user string, hasPassword bool) {
	switch {
	case user != "" && !hasPassword:
		t.errorf("username", "needs a password")
	case user == "" && hasPassword:
		t.errorf("password", "needs a username")
	}
	if user != "" {
		t.check("username", checkOneLine(user))
	}
}

// alertmanager checks an [[alertmanager]] table.
func (r *reader) alertmanager(t at, f *fileAlertmanager, names map[string]string) Alertmanager {
	a := Alertmanager{
		Name:    r.channelName(t, f.Name, names),
		Timeout: DefaultAlertmanagerTimeout, ResendInterval: DefaultResendInterval,
	}
	if t.required("urls") {
		a.URLs = f.URLs
		if len(a.URLs) == 0 {
			t.errorf("urls", "needs at least one URL")
		}
		for i, u := range a.URLs {
			if msg := checkHTTPURL(u); msg != "" {
				t.item("urls", i).errorf("", "%s", msg)
			} else if warn := r.readableURL(u); warn != "" {
				t.item("urls", i).warnf("", "%s", warn)
			}
		}
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &a.Timeout)
	a.Headers = r.headers(t, f.Headers)
	r.secretHeaders(t, f.fileHeaders, &a.Headers)
	a.Username = f.Username
	r.credentials(t, a.Username, r.secret(t, "password", f.Password, f.PasswordFile, f.PasswordCredential, &a.Password))
	for i, u := range a.URLs {
		if warn := plainHTTPCredentials(u, a.Headers, a.Username != ""); warn != "" {
			t.item("urls", i).warnf("", "%s", warn)
		}
	}
	t.duration("resend_interval", f.ResendInterval, time.Second, &a.ResendInterval)
	if t.has("labels") {
		a.Labels = f.Labels
		for _, k := range sortedKeys(a.Labels) {
			t.sub("labels").check(k, checkLabelName(k))
		}
	}
	return a
}
