{#-
    The state an incremental delivery model recorded when it was last built (post-hook
    comment_model_state), as a dict: 'raw', the delivery raw tables' versions (macro
    raw_delivery_versions), and what the model adds ('sources' for
    int_delivery_items_conformed, 'inputs' for int_delivery_rows_classified). Empty while
    dbt parses, when `relation` is none, or when its table comment holds no state.
-#}
{% macro model_state(relation) -%}
    {%- if not execute or relation is none -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set comment = run_query(
        "select coalesce(obj_description('" ~ relation ~ "'::regclass, 'pg_class'), '')"
    ).rows[0][0] -%}
    {%- set prefix = 'luckygas state ' -%}
    {%- if comment.startswith(prefix) -%}
        {{ return(fromjson(comment[prefix | length:])) }}
    {%- endif -%}
    {{ return({}) }}
{%- endmacro %}

{#- The post-hook of an incremental delivery model: record, as its table's comment, the
    delivery raw tables' versions it was built from and `extra` (macro model_state). -#}
{% macro comment_model_state(extra={}) -%}
    {%- set state = {'raw': raw_delivery_versions()} -%}
    {%- do state.update(extra) -%}
    comment on table {{ this }} is {{ "'luckygas state " ~ (tojson(state)
        | replace("'", "''")) ~ "'" }}
{%- endmacro %}
