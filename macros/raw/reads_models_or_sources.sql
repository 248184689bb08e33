{#- Whether a node of dbt's graph reads a model or a source (and so, in this project, what
    `luckygas load` staged), not seeds alone. -#}
{% macro reads_models_or_sources(node) -%}
    {%- set read = [] -%}
    {%- for parent in node.depends_on.nodes
        if parent.startswith('model.') or parent.startswith('source.') -%}
        {%- do read.append(parent) -%}
    {%- endfor -%}
    {{ return(read | length > 0) }}
{%- endmacro %}
