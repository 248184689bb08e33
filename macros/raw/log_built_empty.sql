{#- The one log line of a model built empty because its source is not loaded yet:
    "<schema>.<model>: <what> not loaded yet: built empty" (nothing while dbt parses). -#}
{% macro log_built_empty(what) -%}
    {%- if execute -%}
        {%- do log(this.schema ~ '.' ~ this.identifier ~ ': ' ~ what
            ~ ' not loaded yet: built empty', info=True) -%}
    {%- endif -%}
{%- endmacro %}
