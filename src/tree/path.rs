//! ZooKeeper path rules (`PathUtils.validatePath`), as the server applies
//! them. Java measures paths in UTF-16 units, so any character outside the
//! Basic Multilingual Plane (a surrogate pair in Java) is refused, as there.

/// Why a path is invalid; the reply is always BADARGUMENTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    Empty,
    NoLeadingSlash,
    TrailingSlash,
    EmptyNodeName,
    NullCharacter,
    RelativePath,
    InvalidCharacter,
}

pub fn validate_path(path: &str) -> Result<(), PathError> {
    let chars: Vec<char> = path.chars().collect();
    if chars.is_empty() {
        return Err(PathError::Empty);
    }
    if chars[0] != '/' {
        return Err(PathError::NoLeadingSlash);
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == '/' {
        return Err(PathError::TrailingSlash);
    }
    let mut last = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        let next_is_end_or_slash = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            return Err(PathError::NullCharacter);
        } else if c == '/' && last == '/' {
            return Err(PathError::EmptyNodeName);
        } else if c == '.' && last == '.' {
            if chars[i - 2] == '/' && next_is_end_or_slash {
                return Err(PathError::RelativePath);
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && next_is_end_or_slash {
                return Err(PathError::RelativePath);
            }
        } else if is_invalid_char(c) {
            return Err(PathError::InvalidCharacter);
        }
        last = c;
    }
    Ok(())
}

fn is_invalid_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// The parent of `path` and the child's name, split at the last '/'.
/// `"/a"` gives `("/", "a")`; `"/"` has no parent.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// Every proper ancestor of `path`, nearest first, ending with "/".
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = Some(path);
    std::iter::from_fn(move || {
        let p = cur?;
        let (parent, _) = split_parent(p)?;
        cur = Some(parent);
        Some(parent)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/é", "/a b", "/zookeeper"] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        for bad in
            ["", "a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a\0", "/\u{1}", "/🦀", "/\u{fff5}"]
        {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/"), None);
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a/b", "/a", "/"]);
    }
}
