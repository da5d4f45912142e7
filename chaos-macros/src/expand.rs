//! The expansion: the function as written, with its registration in `chaos_runtime`'s test slice
//! as the first item of its body.
//!
//! Inside the body, the registration adds no name to the module: two tests whose names differ
//! only in case (`fn Foo`, `fn foo`), which once both made a `static __CHAOS_TEST_FOO`, are just
//! two tests. From there it names the function as a free function, `#ident`, which on a function
//! in an `impl` (reached as `Self::#ident`, and not from a nested item) finds nothing: for that
//! case a fallback turns the miss into one error of ours (see `in_an_impl`).

use chaos_topology::Version;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn, ReturnType, Stmt};

use crate::config::Config;
use crate::errors::Errors;
use crate::signature::{Rejected, parse_test_fn};

/// Expands `#[chaos_test(<attr>)] <item>`.
///
/// On errors the item is still emitted, as written but for attributes that would expand again
/// (a second `#[chaos_test]`, a `#[tokio::test]`), next to the `compile_error!`s, so that the user
/// sees only what is wrong with the attribute, not follow-up errors about a missing function or
/// an unused import, and IDEs keep working on the body.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match (Config::parse(attr), parse_test_fn(item)) {
        (Ok(config), Ok(test_fn)) => with_registration(&config, test_fn),
        (config, test_fn) => {
            let mut errors = Errors::default();
            errors.take(config);
            let item = match test_fn {
                Ok(test_fn) => test_fn.into_token_stream(),
                Err(Rejected { error, item }) => {
                    errors.push(error);
                    item
                }
            };
            let errors = errors.finish().err().map(|e| e.into_compile_error());
            quote!(#item #errors)
        }
    }
}

/// The function with its registration as the first statement of its body (after any inner
/// attributes, which `ItemFn` prints first).
fn with_registration(config: &Config, mut test_fn: ItemFn) -> TokenStream {
    let registration = registration(config, &test_fn);
    let registration = Stmt::Item(Item::Verbatim(registration));
    test_fn.block.stmts.insert(0, registration);
    test_fn.into_token_stream()
}

/// The `TestRegistration` static, placed in `TESTS` by linkme, in an anonymous `const` of its own
/// so that none of its names reaches the function's body. Its paths go through
/// `chaos_runtime::__private`, so that a user's crate needs no dependency but `chaos-runtime`.
fn registration(config: &Config, test_fn: &ItemFn) -> TokenStream {
    let private = quote!(::chaos_runtime::__private);
    let ident = &test_fn.sig.ident;
    let name = ident.unraw().to_string();
    // `line!()` spanned at the name gives the line of the function, not of the attribute.
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let masters = Literal::u32_unsuffixed(config.masters);
    let workers = Literal::u32_unsuffixed(config.workers);
    let k8s = version_slice(&config.k8s);
    let master_versions = version_slice(&config.master_versions);
    let worker_versions = version_slice(&config.worker_versions);
    let timeout = optional(config.timeout.map(|timeout| {
        let millis = u64::try_from(timeout.as_millis()).expect("validated in config");
        let millis = Literal::u64_unsuffixed(millis);
        quote!(::core::time::Duration::from_millis(#millis))
    }));
    let ignore = optional(config.ignore.as_deref().map(|reason| quote!(#reason)));
    let retries = optional(config.retries.map(|n| {
        let n = Literal::u32_unsuffixed(n);
        quote!(#n)
    }));
    // The function, under a name of the registration's own; spanned at the function's name so
    // that errors about it point there.
    let callee = Ident::new("__chaos_test_fn", ident.span());
    let run = run_closure(test_fn, &callee);
    let in_an_impl = in_an_impl(ident, &callee);
    quote! {
        #[allow(non_camel_case_types, non_upper_case_globals, unused_imports, dead_code)]
        const _: () = {
            #in_an_impl
            #[#private::linkme::distributed_slice(#private::TESTS)]
            #[linkme(crate = #private::linkme)]
            static __CHAOS_TEST: #private::TestRegistration = #private::TestRegistration {
                name: #name,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: #line,
                masters: #masters,
                workers: #workers,
                k8s: #k8s,
                master_versions: #master_versions,
                worker_versions: #worker_versions,
                timeout: #timeout,
                ignore: #ignore,
                run: #run,
                retries: #retries,
            };
        };
    }
}

/// Binds `callee` to the test function when it is a free function, and otherwise makes the one
/// error that the attribute goes on a free function. A receiver (`&self`) is refused by
/// `signature`; an associated function without one looks like any function to a macro, so this
/// is decided by name resolution, in the registration's block:
///
/// - A module whose glob import of the enclosing module holds the free function of that name,
///   if there is one (a function in an `impl` is not there: it is `Self::#ident`), and whose
///   `struct #ident {}` puts the name in the type namespace, so that `use` of it always
///   resolves. Through a path rather than by lexical scope, so that a parameter of the same name
///   (`async fn cluster(cluster: &Cluster)`) is not in the way.
/// - A glob import of fallbacks under the names that `use` binds, which it shadows wherever it
///   binds a value: a callable stand-in (so that the registration still type-checks) and a
///   marker whose `check` demands a trait that nothing in reach implements, whose
///   `on_unimplemented` message is the error. On a free function, `check` is a blanket trait
///   method that asks for nothing.
fn in_an_impl(ident: &Ident, callee: &Ident) -> TokenStream {
    let marker = Ident::new("__chaos_test_free", ident.span());
    // Spanned at the name, as the error is.
    let check = quote_spanned!(ident.span()=> #marker.check(InAnImpl));
    let name = ident.unraw();
    let message = format!(
        "`#[chaos_test]` goes on a free function of a module, not on one in an `impl` block or \
         inside another function: move `{name}` out to the module"
    );
    quote! {
        mod __chaos_test_lookup {
            pub use super::*;
            pub struct #ident {}
        }
        mod __chaos_test_fallback {
            #[diagnostic::on_unimplemented(message = #message, label = "in an `impl` block")]
            pub trait FreeFunction {}
            #[diagnostic::do_not_recommend]
            impl FreeFunction for () {}
            pub struct InAnImpl;
            pub struct NotAFreeFunction;
            impl NotAFreeFunction {
                pub fn check<W: FreeFunction>(&self, _: W) {}
            }
            pub trait Check {
                fn check<W>(&self, _: W) {}
            }
            impl<T: ?::core::marker::Sized> Check for T {}
            pub const #marker: NotAFreeFunction = NotAFreeFunction;
            pub async fn #callee<T>(_: T) {}
        }
        use __chaos_test_fallback::*;
        use __chaos_test_lookup::#ident as #callee;
        use __chaos_test_lookup::#ident as #marker;
        fn __chaos_test_check() {
            #check;
        }
    }
}

/// Normalized, as `Version` displays them: `"v1.29.14"` is written `"1.29.14"`.
fn version_slice(versions: &[Version]) -> TokenStream {
    let versions = versions.iter().map(Version::to_string);
    quote!(&[#(#versions),*])
}

fn optional(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// `fn(Cluster) -> TestFuture`: owns the cluster, lends it to the test, converts its result.
///
/// Spans make type errors in this glue point at the user's code: a future that is not `Send` at
/// the function's name, a wrong parameter type at the parameter, a result that does not convert
/// at the return type.
fn run_closure(test_fn: &ItemFn, callee: &Ident) -> TokenStream {
    let sig = &test_fn.sig;
    let ident = &sig.ident;
    let param_span = match sig.inputs.first() {
        Some(FnArg::Typed(param)) => param.ty.span(),
        _ => ident.span(),
    };
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    // Mixed-site hygiene: a test function named `cluster` is not shadowed by this binding.
    let cluster = Ident::new("cluster", Span::mixed_site());
    // Spanned so that a result that does not convert is reported at the return type, not at the
    // attribute.
    let result = Ident::new("result", output_span);
    let borrow = quote_spanned!(param_span=> &#cluster);
    let into_test_result = quote_spanned!(output_span=>
        ::chaos_runtime::__private::IntoTestResult::into_test_result
    );
    quote_spanned! {ident.span()=>
        |#cluster| ::std::boxed::Box::pin(async move {
            let #result = #callee(#borrow).await;
            #into_test_result(#result)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(attr: TokenStream, item: TokenStream) -> String {
        let file = syn::parse2(expand(attr, item)).expect("the expansion is a file of items");
        prettyplease::unparse(&file)
    }

    #[test]
    fn three_masters_three_workers_with_older_workers() {
        insta::assert_snapshot!(expanded(
            quote!(
                masters = 3,
                workers = 3,
                k8s = "1.29",
                worker_versions = ["1.28"]
            ),
            quote! {
                async fn api_survives_worker_loss(cluster: &Cluster) -> anyhow::Result<()> {
                    let _ = cluster.client();
                    Ok(())
                }
            },
        ));
    }

    #[test]
    fn defaults() {
        insta::assert_snapshot!(expanded(
            quote!(),
            quote!(
                async fn smoke(_cluster: &Cluster) {}
            ),
        ));
    }

    #[test]
    fn version_matrix_normalizes_versions() {
        insta::assert_snapshot!(expanded(
            quote!(
                k8s = ["1.29", "v1.30.2"],
                worker_versions = ["v1.29", "1.28"],
                workers = 2
            ),
            quote!(
                async fn upgrade_matrix(cluster: &chaos_runtime::Cluster) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
        ));
    }

    #[test]
    fn ignore_with_reason_and_timeout() {
        insta::assert_snapshot!(expanded(
            quote!(ignore = "needs a real kind cluster", timeout = "90s"),
            quote!(
                pub async fn slow_drain(cluster: &Cluster) -> Result<(), std::io::Error> {
                    Ok(())
                }
            ),
        ));
    }

    #[test]
    fn retries() {
        insta::assert_snapshot!(expanded(
            quote!(retries = 2),
            quote!(
                async fn sometimes_slow(_cluster: &Cluster) {}
            ),
        ));
    }

    #[test]
    fn errors_keep_the_function() {
        insta::assert_snapshot!(expanded(
            quote!(wokers = 3),
            quote!(
                fn not_async(cluster: &Cluster) {}
            ),
        ));
    }
}
