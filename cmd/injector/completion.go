package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The completion scripts are generated from the commands' own flag
// definitions, so they offer exactly what each command accepts.

func completionCommand() *command {
	return &command{
		name: "completion", summary: "print a shell completion script for bash, zsh or fish",
		args: "SHELL", minArgs: 1, maxArgs: 1, argChoices: []string{"bash", "zsh", "fish"},
		about: `The script completes commands, each command's flags and the values of flags
that take a file, a directory or one of a few words.`,
		examples: []example{
			{"bash: this shell, or every new one", "source <(injector completion bash)   # or: injector completion bash > /etc/bash_completion.d/injector"},
			{"zsh and fish: install once", `injector completion zsh > "${fpath[1]}/_injector"; injector completion fish > ~/.config/fish/completions/injector.fish`},
		},
		run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			cmds := completionSpecs()
			switch args[0] {
			case "bash":
				bashCompletion(stdout, cmds)
			case "zsh":
				zshCompletion(stdout, cmds)
			case "fish":
				fishCompletion(stdout, cmds)
			}
			return nil
		},
	}
}

// completionSpec is what completion needs of one command.
type completionSpec struct {
	*command
	flags []*flagDoc
}

func completionSpecs() []completionSpec {
	var out []completionSpec
	for _, c := range commands() {
		f := newFlagSet(c.name)
		if c.flags != nil {
			c.flags(f)
		}
		spec := completionSpec{command: c}
		for _, g := range f.groups {
			spec.flags = append(spec.flags, g.flags...)
		}
		out = append(out, spec)
	}
	return out
}

// argWords are the words a command's positionals complete to.
func (c completionSpec) argWords() []string {
	switch {
	case c.argChoices != nil:
		return c.argChoices
	case c.name == "help":
		var names []string
		for _, c := range commands() {
			names = append(names, c.name)
		}
		return names
	case c.name == "get":
		return []string{"passwork:", "passbolt:", "passagent:"}
	}
	return nil
}

func (d *flagDoc) names() []string {
	n := []string{"--" + d.long}
	if d.short != "" {
		n = append([]string{"-" + d.short}, n...)
	}
	return n
}

func bashCompletion(w io.Writer, cmds []completionSpec) {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# bash completion for injector. Load it with: source <(injector completion bash)
_injector() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} i
    COMPREPLY=()
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W '%s --help --version' -- "$cur"))
        return
    fi
    case ${COMP_WORDS[1]} in
`, strings.Join(names, " "))
	for _, c := range cmds {
		fmt.Fprintf(w, "    %s)\n", c.name)
		if c.passthrough {
			// After "--" or the first positional, complete CMD and its files.
			fmt.Fprintf(w, `        for ((i = 2; i < COMP_CWORD; i++)); do
            case ${COMP_WORDS[i]} in
            --) break ;;
%s            -*) ;;
            *) break ;;
            esac
        done
        if (( i < COMP_CWORD )); then
            if [[ ${COMP_WORDS[i]} == -- ]] && (( i + 1 == COMP_CWORD )); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            return
        fi
`, bashValueSkips(c.flags))
		}
		fmt.Fprint(w, "        case $prev in\n")
		for _, d := range c.flags {
			if d.arg == "" {
				continue
			}
			fmt.Fprintf(w, "        %s)", strings.Join(d.names(), "|"))
			switch {
			case d.choices != nil:
				fmt.Fprintf(w, " COMPREPLY=($(compgen -W '%s' -- \"$cur\"));", strings.Join(d.choices, " "))
			case d.complete == "file":
				fmt.Fprint(w, " COMPREPLY=($(compgen -f -- \"$cur\"));")
			case d.complete == "dir":
				fmt.Fprint(w, " COMPREPLY=($(compgen -d -- \"$cur\"));")
			}
			fmt.Fprint(w, " return ;;\n")
		}
		var flags []string
		for _, d := range c.flags {
			flags = append(flags, d.names()...)
		}
		flags = append(flags, "--help")
		fmt.Fprintf(w, "        esac\n        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W '%s' -- \"$cur\"))\n", strings.Join(flags, " "))
		if words := c.argWords(); words != nil {
			fmt.Fprintf(w, "        else\n            COMPREPLY=($(compgen -W '%s' -- \"$cur\"))\n", strings.Join(words, " "))
			if c.name == "get" {
				fmt.Fprint(w, "            compopt -o nospace 2>/dev/null\n")
			}
		} else if c.passthrough {
			fmt.Fprint(w, "        else\n            COMPREPLY=($(compgen -c -- \"$cur\"))\n")
		}
		fmt.Fprint(w, "        fi\n        ;;\n")
	}
	fmt.Fprint(w, `    esac
}
complete -o default -F _injector injector
`)
}

// bashValueSkips are case arms that skip a flag's value while looking for
// the first positional: "--flag) ((i++)) ;;".
func bashValueSkips(flags []*flagDoc) string {
	var b strings.Builder
	for _, d := range flags {
		if d.arg != "" {
			fmt.Fprintf(&b, "            %s) ((i++)) ;;\n", strings.Join(d.names(), "|"))
		}
	}
	return b.String()
}

func zshCompletion(w io.Writer, cmds []completionSpec) {
	fmt.Fprint(w, `#compdef injector
# zsh completion for injector. Install it as _injector in a directory of
# $fpath, or load it with: source <(injector completion zsh)

_injector() {
    local -a commands
    commands=(
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "        %s\n", zshQuote(c.name+":"+c.summary))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'injector command' commands
        return
    fi
    local cmd=${words[2]}
    shift words
    (( CURRENT-- ))
    case $cmd in
`)
	for _, c := range cmds {
		opts := "-s -S"
		if c.passthrough {
			opts += " -A '-*'" // no injector flags after CMD
		}
		fmt.Fprintf(w, "    %s)\n        _arguments %s \\\n", c.name, opts)
		for _, d := range c.flags {
			fmt.Fprintf(w, "            %s \\\n", zshFlagSpec(d))
		}
		fmt.Fprintf(w, "            %s \\\n", zshQuote("(- *)"+"--help[show this help]"))
		switch {
		case c.passthrough:
			fmt.Fprint(w, "            '(-)1:command:_command_names -e' \\\n            '*::arguments:_normal'\n")
		case c.argWords() != nil:
			words := c.argWords()
			sort.Strings(words)
			msg := strings.ReplaceAll(strings.ToLower(strings.Trim(c.args, "[]")), ":", `\:`)
			fmt.Fprintf(w, "            %s\n", zshQuote("1:"+msg+":("+strings.Join(words, " ")+")"))
		default:
			fmt.Fprint(w, "            ': :'\n")
		}
		fmt.Fprint(w, "        ;;\n")
	}
	fmt.Fprint(w, `    esac
}

if [[ $zsh_eval_context[-1] == loadautoload ]]; then
    _injector "$@"
else
    compdef _injector injector
fi
`)
}

// zshFlagSpec is one _arguments spec: '(-t --template)'{-t,--template}'[...]:ARG:action'.
func zshFlagSpec(d *flagDoc) string {
	desc := strings.NewReplacer("[", "(", "]", ")", ":", `\:`, "'", "").Replace(d.usage)
	if i := strings.Index(desc, ";"); i > 0 {
		desc = desc[:i] // the first clause is enough on one line
	}
	action := ""
	if d.arg != "" {
		arg := strings.NewReplacer(":", `\:`, "[", "(", "]", ")", `"`, "").Replace(d.arg)
		switch {
		case d.choices != nil:
			action = ":" + arg + ":(" + strings.Join(d.choices, " ") + ")"
		case d.complete == "file":
			action = ":" + arg + ":_files"
		case d.complete == "dir":
			action = ":" + arg + ":_files -/"
		default:
			action = ":" + arg + ": "
		}
	}
	repeat := ""
	if d.repeatable {
		repeat = "*"
	}
	if d.short == "" {
		return zshQuote(repeat + "--" + d.long + "[" + desc + "]" + action)
	}
	excl := ""
	if !d.repeatable {
		excl = "(-" + d.short + " --" + d.long + ")"
	}
	return zshQuote(excl+repeat) + "{-" + d.short + ",--" + d.long + "}" + zshQuote("["+desc+"]"+action)
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fishCompletion(w io.Writer, cmds []completionSpec) {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# fish completion for injector. Install it as
# ~/.config/fish/completions/injector.fish, or load it with:
#   injector completion fish | source
complete -c injector -f
complete -c injector -n '__fish_use_subcommand' -l help -d 'show the commands'
complete -c injector -n '__fish_use_subcommand' -l version -d 'print the version'
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c injector -n '__fish_use_subcommand' -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range cmds {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		if c.passthrough {
			// Flags only until CMD; then CMD's own arguments.
			fishPassthroughState(w, c)
			cond = fishQuote("__fish_seen_subcommand_from " + c.name + "; and test (__injector_" + c.name + "_state) = flags")
		}
		for _, d := range c.flags {
			fmt.Fprintf(w, "complete -c injector -n %s", cond)
			if d.short != "" {
				fmt.Fprintf(w, " -s %s", d.short)
			}
			fmt.Fprintf(w, " -l %s", d.long)
			switch {
			case d.arg == "":
			case d.choices != nil:
				fmt.Fprintf(w, " -x -a %s", fishQuote(strings.Join(d.choices, " ")))
			case d.complete == "file":
				fmt.Fprint(w, " -r -F")
			case d.complete == "dir":
				fmt.Fprint(w, " -x -a '(__fish_complete_directories)'")
			default:
				fmt.Fprint(w, " -x")
			}
			fmt.Fprintf(w, " -d %s\n", fishQuote(firstClause(d.usage)))
		}
		if words := c.argWords(); words != nil {
			fmt.Fprintf(w, "complete -c injector -n %s -a %s\n", cond, fishQuote(strings.Join(words, " ")))
		}
		if c.passthrough {
			state := "__fish_seen_subcommand_from " + c.name + "; and test (__injector_" + c.name + "_state)"
			fmt.Fprintf(w, "complete -c injector -n %s -a '(__fish_complete_command)'\n", fishQuote(state+" != args"))
			fmt.Fprintf(w, "complete -c injector -n %s -F\n", fishQuote(state+" = args"))
		}
	}
}

// fishPassthroughState defines __injector_CMD_state, which says where the
// token being completed is: "flags" (injector's own), "cmd" (right after
// "--") or "args" (CMD's arguments).
func fishPassthroughState(w io.Writer, c completionSpec) {
	var valued []string
	for _, d := range c.flags {
		if d.arg != "" {
			valued = append(valued, d.names()...)
		}
	}
	fmt.Fprintf(w, `function __injector_%s_state
    set -l tokens (commandline -opc)
    set -l state flags
    set -l skip 0
    for t in $tokens[3..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $state
            case flags
                switch $t
                    case --
                        set state cmd
                    case %s
                        set skip 1
                    case '-*'
                    case '*'
                        set state args
                end
            case cmd
                set state args
        end
    end
    echo $state
end
`, c.name, strings.Join(valued, " "))
}

func firstClause(s string) string {
	if i := strings.Index(s, ";"); i > 0 {
		return s[:i]
	}
	return s
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}
