//! The `#[track(STATE)]` attribute of `perf-producer`. Use it through
//! `perf_producer::track` (the re-export); the expansion names `::perf_producer`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::{parse_macro_input, Expr, ItemFn};

/// Times every call of a function or async function as one span of `STATE`.
///
/// The argument is a state's CSV name (`ANALYZING_PROTOCOL`, resolved as
/// `perf_producer::RobotActivityState::ANALYZING_PROTOCOL`, so a misspelt name is a compile
/// error) or any other expression of type `RobotActivityState`. A lone identifier, of any
/// case, is always taken as a state name: to pass a variable or constant, write a path or
/// another expression (`#[track(State::Calibrating)]`, `#[track(crate::STATE)]`,
/// `#[track({ state })]`).
///
/// The expansion adds one guard as the first statement of the body, so the span ends
/// however the body ends: return, `?`, panic. In an `async fn` the body first runs at the
/// first poll, so the span covers first poll to completion, and a future dropped after it
/// started still records (the guard is dropped with it) — the same as `.tracked(..)`.
///
/// ```ignore
/// #[perf_producer::track(ANALYZING_PROTOCOL)]
/// async fn analyze(path: &str) -> Result<(), Error> { ... }
/// ```
#[proc_macro_attribute]
pub fn track(attr: TokenStream, item: TokenStream) -> TokenStream {
    let state = parse_macro_input!(attr as Expr);
    let mut func = parse_macro_input!(item as ItemFn);
    if let Some(constness) = func.sig.constness {
        return syn::Error::new_spanned(constness, "#[track] cannot time a const fn")
            .to_compile_error()
            .into();
    }
    // A lone identifier (one path segment, no `::` in front, any case) is a CSV state name;
    // anything else, longer paths included, is an expression.
    let state = match &state {
        Expr::Path(p)
            if p.qself.is_none()
                && p.path.segments.len() == 1
                && p.path.leading_colon.is_none() =>
        {
            let ident = &p.path.segments[0].ident;
            quote_spanned! {ident.span()=> ::perf_producer::RobotActivityState::#ident }
        }
        other => quote! { #other },
    };
    // Mixed-site hygiene: the guard's name cannot clash with the body's identifiers.
    let guard = syn::Ident::new("__perf_producer_span", Span::mixed_site());
    let stmts = &func.block.stmts;
    let body = quote! {
        {
            let #guard = ::perf_producer::track(#state);
            #(#stmts)*
        }
    };
    func.block = match syn::parse2(body) {
        Ok(block) => Box::new(block),
        Err(e) => return e.to_compile_error().into(),
    };
    quote!(#func).into()
}
