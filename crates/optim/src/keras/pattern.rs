//! Python `re.search` for the patterns of Keras's
//! `optimizer.exclude_from_weight_decay(var_names=[...])`, which compiles
//! `re.compile("|".join(set(var_names)))` and excludes a variable when
//! `re.search(pattern, variable.name)` finds a match (`keras/src/optimizers/base_optimizer.py`,
//! `exclude_from_weight_decay` and `_use_weight_decay`). Joining with `|` and searching means
//! "any one pattern matches somewhere in the name", which is how [`Pattern`] is used.
//!
//! A backtracking matcher for the `re` syntax variable-name patterns use: literals, `.`,
//! `^`, `$`, `\A`, `\Z`, `\b`, `\B`, classes `[...]` / `[^...]` with ranges, `\d \w \s`
//! (and their negations, Unicode-aware as for `str` patterns), groups `(...)` / `(?:...)`,
//! alternation, and the quantifiers `* + ? {m} {m,} {,n} {m,n}` with their lazy `?` forms.
//! Flags, lookaround, back-references and numeric escapes are refused with a message rather
//! than matched differently from Python.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Empty,
    Char(char),
    /// `.`: anything but `\n`.
    Any,
    Class {
        items: Vec<ClassItem>,
        negated: bool,
    },
    /// `^` / `\A`.
    Start,
    /// `$`: the end, or just before a final `\n`.
    End,
    /// `\Z`: the very end.
    EndAbsolute,
    /// `\b` (true) / `\B` (false).
    WordBoundary(bool),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
        greedy: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassItem {
    Range(char, char),
    /// `\d` / `\D` (negated = true).
    Digit(bool),
    Word(bool),
    Space(bool),
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

impl ClassItem {
    fn matches(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(a, b) => a <= c && c <= b,
            ClassItem::Digit(neg) => is_digit(c) != neg,
            ClassItem::Word(neg) => is_word(c) != neg,
            ClassItem::Space(neg) => c.is_whitespace() != neg,
        }
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut alts = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.concat()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// `{m}`, `{m,}`, `{,n}`, `{m,n}` at `self.i` (pointing at `{`); `None` when the brace is
    /// a literal, as in Python.
    fn braces(&self) -> Option<(usize, Option<usize>, usize)> {
        let rest = &self.s[self.i + 1..];
        let close = rest.iter().position(|&c| c == '}')?;
        let body: String = rest[..close].iter().collect();
        let num = |t: &str| -> Option<Option<usize>> {
            if t.is_empty() {
                Some(None)
            } else if t.chars().all(|c| c.is_ascii_digit()) {
                t.parse().ok().map(Some)
            } else {
                None
            }
        };
        let (min, max) = match body.split_once(',') {
            None => {
                let m = num(&body)??;
                (m, Some(m))
            }
            Some((a, b)) => (num(a)?.unwrap_or(0), num(b)?),
        };
        Some((min, max, close + 2))
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => {
                self.i += 1;
                (0, None)
            }
            Some('+') => {
                self.i += 1;
                (1, None)
            }
            Some('?') => {
                self.i += 1;
                (0, Some(1))
            }
            Some('{') => match self.braces() {
                Some((min, max, len)) => {
                    if max.is_some_and(|m| m < min) {
                        return Err("min repeat greater than max repeat".into());
                    }
                    self.i += len;
                    (min, max)
                }
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if matches!(
            atom,
            Node::Start | Node::End | Node::EndAbsolute | Node::WordBoundary(_)
        ) {
            return Err("nothing to repeat".into());
        }
        let greedy = match self.peek() {
            Some('?') => {
                self.i += 1;
                false
            }
            Some('+') => return Err("possessive quantifiers are not emulated".into()),
            Some('*') | Some('{') => return Err("multiple repeat".into()),
            _ => true,
        };
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    fn escape(&mut self, in_class: bool) -> Result<Result<char, ClassItem>, String> {
        let Some(c) = self.peek() else {
            return Err("bad escape (end of pattern)".into());
        };
        self.i += 1;
        Ok(match c {
            'd' => Err(ClassItem::Digit(false)),
            'D' => Err(ClassItem::Digit(true)),
            'w' => Err(ClassItem::Word(false)),
            'W' => Err(ClassItem::Word(true)),
            's' => Err(ClassItem::Space(false)),
            'S' => Err(ClassItem::Space(true)),
            'n' => Ok('\n'),
            't' => Ok('\t'),
            'r' => Ok('\r'),
            'f' => Ok('\u{c}'),
            'v' => Ok('\u{b}'),
            'a' => Ok('\u{7}'),
            'b' if in_class => Ok('\u{8}'),
            c if c.is_ascii_alphanumeric() => {
                return Err(format!("escape \\{c} is not emulated"));
            }
            c => Ok(c),
        })
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Ok(Node::Empty);
        };
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return Err("nothing to repeat".into()),
            '(' => {
                if self.peek() == Some('?') {
                    if self.s.get(self.i + 1) == Some(&':') {
                        self.i += 2;
                    } else {
                        return Err(
                            "group extensions (?...) other than (?:...) are not emulated".into(),
                        );
                    }
                }
                let inner = self.alt()?;
                if self.peek() != Some(')') {
                    return Err("missing ), unterminated subpattern".into());
                }
                self.i += 1;
                inner
            }
            ')' => return Err("unbalanced parenthesis".into()),
            '[' => self.class()?,
            '\\' => match self.peek() {
                Some('A') => {
                    self.i += 1;
                    Node::Start
                }
                Some('Z') => {
                    self.i += 1;
                    Node::EndAbsolute
                }
                Some('b') => {
                    self.i += 1;
                    Node::WordBoundary(true)
                }
                Some('B') => {
                    self.i += 1;
                    Node::WordBoundary(false)
                }
                _ => match self.escape(false)? {
                    Ok(ch) => Node::Char(ch),
                    Err(item) => Node::Class {
                        items: vec![item],
                        negated: false,
                    },
                },
            },
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated character set".into());
            };
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Ok(ch) => ch,
                    Err(item) => {
                        items.push(item);
                        continue;
                    }
                }
            } else {
                c
            };
            // A range `lo-hi`, unless the `-` is last in the set.
            if self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let h = self.peek().unwrap_or(']');
                self.i += 1;
                let hi = if h == '\\' {
                    match self.escape(true)? {
                        Ok(ch) => ch,
                        Err(_) => return Err(format!("bad character range {lo}-\\...")),
                    }
                } else {
                    h
                };
                if hi < lo {
                    return Err(format!("bad character range {lo}-{hi}"));
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(Node::Class { items, negated })
    }
}

type Cont<'a> = &'a mut dyn FnMut(usize) -> bool;

impl Pattern {
    /// Compile a pattern; the error says what Python would refuse or what is not emulated.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, String> {
        let s: Vec<char> = pattern.chars().collect();
        let mut p = Parser { s: &s, i: 0 };
        let root = p.alt()?;
        if p.i < s.len() {
            return Err("unbalanced parenthesis".into());
        }
        Ok(Pattern { root })
    }

    /// `re.search(pattern, text) is not None`.
    pub(crate) fn search(&self, text: &str) -> bool {
        let s: Vec<char> = text.chars().collect();
        (0..=s.len()).any(|start| self.m(&self.root, &s, start, &mut |_| true))
    }

    fn m(&self, node: &Node, s: &[char], i: usize, k: Cont<'_>) -> bool {
        match node {
            Node::Empty => k(i),
            Node::Char(c) => s.get(i) == Some(c) && k(i + 1),
            Node::Any => s.get(i).is_some_and(|&c| c != '\n') && k(i + 1),
            Node::Class { items, negated } => {
                s.get(i)
                    .is_some_and(|&c| items.iter().any(|it| it.matches(c)) != *negated)
                    && k(i + 1)
            }
            Node::Start => i == 0 && k(i),
            Node::End => (i == s.len() || (i + 1 == s.len() && s[i] == '\n')) && k(i),
            Node::EndAbsolute => i == s.len() && k(i),
            Node::WordBoundary(want) => {
                let before = i > 0 && is_word(s[i - 1]);
                let after = s.get(i).is_some_and(|&c| is_word(c));
                ((before != after) == *want) && k(i)
            }
            Node::Concat(items) => self.concat(items, s, i, k),
            Node::Alt(alts) => alts.iter().any(|a| self.m(a, s, i, &mut *k)),
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => self.repeat(node, *min, *max, *greedy, 0, s, i, k),
        }
    }

    fn concat(&self, items: &[Node], s: &[char], i: usize, k: Cont<'_>) -> bool {
        match items.split_first() {
            None => k(i),
            Some((first, rest)) => self.m(first, s, i, &mut |j| self.concat(rest, s, j, &mut *k)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &self,
        node: &Node,
        min: usize,
        max: Option<usize>,
        greedy: bool,
        count: usize,
        s: &[char],
        i: usize,
        k: Cont<'_>,
    ) -> bool {
        let can_more = max.is_none_or(|m| count < m);
        let more = |k: Cont<'_>| {
            can_more
                && self.m(node, s, i, &mut |j| {
                    // An empty iteration past the minimum cannot make progress.
                    if j == i && count >= min {
                        return false;
                    }
                    self.repeat(node, min, max, greedy, count + 1, s, j, &mut *k)
                })
        };
        if greedy {
            more(&mut *k) || (count >= min && k(i))
        } else {
            (count >= min && k(i)) || more(k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    /// `re.search(pattern, text) is not None`, or the compile error.
    #[track_caller]
    fn check(pattern: &str, text: &str, expected: Result<bool, &str>) {
        let got = Pattern::new(pattern).map(|p| p.search(text));
        assert_eq!(
            got.as_ref().map(|b| *b).map_err(String::as_str),
            expected,
            "{pattern} on {text}"
        );
    }

    #[test]
    fn python_re_search() {
        check("bias", "dense_1/bias", Ok(true));
        check("bias", "kernel", Ok(false));
        check("^b$", "b", Ok(true));
        check("^b$", "bb", Ok(false));
        check("^b$|bias", "xbiasx", Ok(true));
        check("gamma|beta", "layer_norm/beta", Ok(true));
        check("norm.*(gamma|beta)", "layer_norm/beta", Ok(true));
        check("norm.*(?:gamma|beta)$", "layer_norm/beta_1", Ok(false));
        check("[Ll]ayer[_ ]?[Nn]orm", "LayerNorm", Ok(true));
        check(r"\d+$", "dense_12", Ok(true));
        check(r"^\w+_\d{2}$", "dense_12", Ok(true));
        check(r"^\w+_\d{3,}$", "dense_12", Ok(false));
        check(r"\bbias\b", "my_bias", Ok(false));
        check(r"\bbias\b", "my/bias", Ok(true));
        check("a{", "a{", Ok(true));
        check("[^a-z]", "abc", Ok(false));
        check("[^a-z]", "ab1", Ok(true));
        check("a.*?c", "abc", Ok(true));
        check("(a|)*b", "aab", Ok(true));
        check("", "anything", Ok(true));
        check("*a", "a", Err("nothing to repeat"));
        check("(a", "a", Err("missing ), unterminated subpattern"));
        check(
            "(?i)bias",
            "BIAS",
            Err("group extensions (?...) other than (?:...) are not emulated"),
        );
        check(r"\1", "a", Err("escape \\1 is not emulated"));
    }
}
